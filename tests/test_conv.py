"""Convolutional layers on shares (jaxmpc.nn.conv) against integer references and plaintext twins.

The ring maps (the convolution and its two adjoints) are checked bit for bit: the convolution
against XLA's own uint64 convolution, the adjoints by the exact duality
<conv(x, w), dy> = <w, dW(dy, x)> = <x, dX(dy, w)> mod 2^64, on uniform ring elements and the edge
values 0, 1, 2^63 - 1, 2^63, 2^64 - 1.

Layers are checked against their plaintext twins (forward) and ``jax.vjp`` of the twins (backward)
for 2, 3 and 5 parties, under jit and vmap. Bounds are in units of 1/scale (base 2, 16 bits): an
encoded value is within 0.5 unit, a product of values of magnitude <= 1 within 1 unit, so a sum of
k products is within k units, and a truncation adds < 1 unit (base 2).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jaxmpc
from jaxmpc.core import im2col
from jaxmpc.nn import conv
from jaxmpc.errors import InputTypeError, ProtocolError, ShareMismatchError

FXP_BITS = 16
UNIT = 2.0 ** -FXP_BITS
EDGES = np.array([0, 1, 2**63 - 1, 2**63, 2**64 - 1], np.uint64)


# ---- the ring maps, bit for bit -------------------------------------------------------------------
@pytest.mark.parametrize("b,c,h,w,o,kernel,stride,padding,method,dilation,groups", [
    (2, 3, 5, 6, 4, (3, 3), 1, 1, "xla", 1, 1),
    (1, 2, 7, 7, 3, (3, 2), 2, 0, "f64", 1, 1),
    (2, 1, 4, 5, 2, (2, 2), (2, 1), (1, 0), None, 1, 1),  # the automatic choice
    (1, 4, 7, 8, 6, (2, 3), 1, (1, 2), None, (2, 1), 2),  # dilated, 2 groups
    (2, 3, 6, 6, 3, (3, 3), 2, 1, "f64", 2, 3),  # depthwise
])
def test_ring_maps_are_exact(b, c, h, w, o, kernel, stride, padding, method, dilation, groups):
    rng = np.random.default_rng(h * w + o)
    x = rng.integers(0, 2**64, (b, c, h, w), np.uint64, endpoint=False)
    k = rng.integers(0, 2**64, (o, c // groups) + kernel, np.uint64, endpoint=False)
    x.flat[:5], k.flat[:5] = EDGES, EDGES[::-1]
    x, k = jnp.asarray(x), jnp.asarray(k)
    mm = functools.partial(jaxmpc.core.gemm.matmul, method=method)
    st, pd = im2col.pair(stride, "stride", 1), im2col.pair(padding, "padding", 0)
    # The oracle runs on the CPU: XLA's GPU backend has no uint64 convolution (cuDNN takes int8 only)
    cpu = jax.devices("cpu")[0]
    ref = lax.conv_general_dilated(jax.device_put(x, cpu), jax.device_put(k, cpu), st,
                                   [(pd[0], pd[0]), (pd[1], pd[1])],
                                   rhs_dilation=im2col.pair(dilation, "dilation", 1),
                                   dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                   feature_group_count=groups, preferred_element_type=jnp.uint64)
    dy = jnp.asarray(rng.integers(0, 2**64, ref.shape, np.uint64, endpoint=False))

    @jax.jit  # one compilation (eager dispatch of the im2col loop would compile every slice)
    def maps(x, k, dy):
        opts = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups, "matmul": mm}
        return (im2col.conv2d_ring(x, k, **opts), im2col.conv2d_weight_ring(dy, x, kernel_size=kernel, **opts),
                im2col.conv2d_input_ring(dy, k, input_size=(h, w), **opts))

    y, dw, dx = maps(x, k, dy)
    assert y.dtype == dw.dtype == dx.dtype == jnp.uint64
    assert y.shape == ref.shape and dw.shape == k.shape and dx.shape == x.shape
    np.testing.assert_array_equal(np.asarray(y), np.asarray(ref))

    def dot(u, v):  # exact: numpy uint64 products and sums wrap mod 2^64
        return int(np.sum(np.asarray(u) * np.asarray(v), dtype=np.uint64))

    assert dot(ref, dy) == dot(k, dw) == dot(x, dx)


# ---- layers against their plaintext twins, forward and backward ----------------------------------
# (name, layer, input shape, parties). Max pooling runs its protocol for 2 parties, on a window of 6
# (3 tournament levels, an odd candidate, overlapping columns, an uncovered last column); for 3 and 5
# parties it runs with the ideal comparisons and products (the comparison protocol is tested for 3
# and 5 parties in test_compare.py; what max pooling adds does not depend on the parties), which
# keeps the compilation short.
CASES = [
    ("conv", conv.Conv2d(2, 3, (3, 2), stride=2, padding=(1, 0)), (2, 2, 5, 4), (2, 3, 5)),
    ("conv_dg", conv.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2), (1, 4, 6, 7), (2, 3)),
    ("conv1d", conv.Conv1d(2, 4, 3, stride=2, padding=1, dilation=2, groups=2), (2, 2, 9), (2, 3)),
    ("maxpool", jaxmpc.nn.MaxPool2d((2, 3), 2), (2, 2, 4, 8), (2,)),
    ("maxpool_ideal", jaxmpc.nn.MaxPool2d(2, mode="ideal"), (2, 2, 4, 5), (3, 5)),
    ("avgpool", jaxmpc.nn.AvgPool2d(3, 2), (1, 2, 5, 6), (2, 3, 5)),
    ("maxpool_pad", jaxmpc.nn.MaxPool2d(3, 2, padding=1, mode="ideal"), (1, 2, 5, 5), (2, 3)),
    ("avgpool_pad", jaxmpc.nn.AvgPool2d(3, 2, padding=1), (1, 2, 5, 6), (2, 3)),
    ("adaptive", jaxmpc.nn.AdaptiveAvgPool2d((2, 3)), (1, 2, 5, 7), (2, 3)),
    ("flatten", jaxmpc.nn.Flatten(), (2, 2, 2, 3), (2, 3, 5)),
]
N_RUNS = 2  # vmapped runs (different keys) per case


def _bounds(name, x_shape, y_shape, kernel=None, stride=None, cg=None):
    """Per-output bounds (units) from the module docstring's error model."""
    if name.startswith("conv"):  # y: C/G k terms; dx: <= O windows' taps; dW: B L terms
        b, l_out = x_shape[0], int(np.prod(y_shape[2:]))
        taps, overlap = int(np.prod(kernel)), int(np.prod([-(-k // s) for k, s in zip(kernel, stride)]))
        return {"y": cg * taps + 2, "dx": y_shape[1] * overlap + 2,
                "weight": b * l_out + 2, "bias": b * l_out / 2 + 1}
    if name == "maxpool_pad":  # padded entries never win; dx sums the dy of <= 4 covering windows
        return {"y": 1, "dx": 2.5}
    if name.startswith("maxpool"):  # exact selections; dx sums the dy of <= 2 covering windows
        return {"y": 1, "dx": 1.5}
    if name == "adaptive":  # as avgpool: windows overlap at most 2 x 2
        return {"y": 2, "dx": 6}
    if name.startswith("avgpool"):  # mean of encodings + 1 truncation; dx: <= 4 windows of dy / T
        return {"y": 2, "dx": 6}
    return {"y": 1, "dx": 1}


@functools.lru_cache(maxsize=None)
def _layers_fn(n_parties: int):
    """One jitted, vmapped function running forward + backward of every case for ``n_parties``."""
    cases = [c for c in CASES if n_parties in c[3]]

    def one(key, params, xs, dys):
        out = []
        keys = jax.random.split(key, len(cases))
        for (name, layer, _, _), k, p, x, dy in zip(cases, keys, params, xs, dys):
            k_p, k_x, k_dy, k_f, k_b = jax.random.split(k, 5)
            fxp = jaxmpc.FixedPoint(2, FXP_BITS)
            sp = jaxmpc.share(k_p, p, fxp, n_parties)
            sx = jaxmpc.share(k_x, x, fxp, n_parties)
            sdy = jaxmpc.share(k_dy, dy, fxp, n_parties)
            y, res = layer.forward(k_f, sp, sx)
            grads, dx = layer.backward(k_b, sp, res, sdy)
            out.append(jaxmpc.reveal((y, grads, dx)))
        return out

    return cases, jax.jit(jax.vmap(one, (0, None, None, None)))


def _inputs(cases, seed):
    """Params, inputs (distinct values on a grid, so no window holds two near-equal values) and
    output gradients of each case, and the twins' outputs and vjps."""
    rng = np.random.default_rng(seed)
    params, xs, dys, want = [], [], [], []
    for i, (name, layer, shape, _) in enumerate(cases):
        p = layer.init(jax.random.key(i))
        size = int(np.prod(shape))
        x = (rng.permutation(size) / size * 2 - 1).reshape(shape)
        y, vjp = jax.vjp(layer.plain, p, jnp.asarray(x))
        dy = rng.uniform(-1, 1, y.shape)
        params.append(p), xs.append(x), dys.append(dy), want.append((y, *vjp(jnp.asarray(dy))))
    return params, xs, dys, want


@pytest.mark.parametrize("n_parties", [2, 3, 5])
def test_layers_match_twin_and_vjp(n_parties):
    cases, fn = _layers_fn(n_parties)
    params, xs, dys, want = _inputs(cases, n_parties)
    keys = jax.random.split(jaxmpc.key(n_parties), N_RUNS)
    got = fn(keys, params, xs, dys)
    for (name, layer, shape, _), p, (y, grads, dx), (y_w, g_w, dx_w) in zip(cases, params, got, want):
        conv_opts = {}
        if name.startswith("conv"):  # every conv case has stride 2
            w = p["weight"].shape
            conv_opts = {"kernel": w[2:], "stride": (2,) * len(w[2:]), "cg": w[1]}
        bound = _bounds(name, shape, y_w.shape, **conv_opts)
        assert y.shape == (N_RUNS,) + y_w.shape and dx.shape == (N_RUNS,) + dx_w.shape, name
        np.testing.assert_allclose(y, np.broadcast_to(y_w, y.shape), atol=bound["y"] * UNIT, rtol=0,
                                   err_msg=f"{name}: forward")
        np.testing.assert_allclose(dx, np.broadcast_to(dx_w, dx.shape), atol=bound["dx"] * UNIT,
                                   rtol=0, err_msg=f"{name}: input gradient")
        for k in (g_w or {}):
            np.testing.assert_allclose(grads[k], np.broadcast_to(g_w[k], grads[k].shape),
                                       atol=bound[k] * UNIT, rtol=0, err_msg=f"{name}: {k} gradient")
        assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(g_w), name


def test_maxpool_ties_route_the_gradient_to_the_first_maximum():
    """Windows with tied maxima (exactly representable values): the forward is the maximum and each
    window's gradient goes to its first maximum in row-major window order, as in the twin's vjp."""
    cases, fn = _layers_fn(2)
    params, xs, dys, _ = _inputs(cases, 0)
    i = [c[0] for c in cases].index("maxpool")  # 2x3 windows, stride 2: columns 2 and 4 are shared
    x = np.zeros(cases[i][2])
    x[0, 0, 0:2, 0:2] = [[0.25, 0.5], [0.5, 0.5]]  # first window: maxima at positions 1, 3, 4
    x[1, 0, 2:4, 0:3] = 0.75  # all six tie (column 2 also leads the next window)
    xs[i], dys[i] = x, np.ones_like(dys[i])  # dx counts the windows that route to each input
    y_w, vjp = jax.vjp(cases[i][1].plain, {}, jnp.asarray(x))
    dx_w = np.asarray(vjp(jnp.asarray(dys[i]))[1])
    got_y, _, got_dx = fn(jax.random.split(jaxmpc.key(9), N_RUNS), params, xs, dys)[i]
    np.testing.assert_allclose(got_y, np.broadcast_to(y_w, got_y.shape), atol=UNIT, rtol=0)
    np.testing.assert_allclose(got_dx, np.broadcast_to(dx_w, got_dx.shape), atol=UNIT, rtol=0)
    # exactly one position per window gets the gradient, and it is the first maximum
    assert dx_w.sum() == y_w.size and set(np.unique(dx_w)) <= {0.0, 1.0, 2.0}
    assert dx_w[0, 0, 0, 1] == 1 and dx_w[0, 0, 1, 0] == dx_w[0, 0, 1, 1] == 0
    np.testing.assert_array_equal(dx_w[1, 0, 2:4, 0:3], [[1, 0, 1], [0, 0, 0]])


# ---- bad input --------------------------------------------------------------------------------------
def _shared(*shape, n=2):
    return jaxmpc.Shared(jnp.zeros((n,) + shape, jnp.uint64), jaxmpc.FixedPoint(2, FXP_BITS))


def test_bad_input_gets_a_clear_error():
    key = jaxmpc.key(0)
    layer = conv.Conv2d(3, 4, 3)
    p = {"weight": _shared(4, 3, 3, 3), "bias": _shared(4)}
    with pytest.raises(ShareMismatchError, match="rank 4"):
        layer.forward(key, p, _shared(3, 8, 8))
    with pytest.raises(ShareMismatchError, match="expects 3 input channels but the input has 2"):
        layer.forward(key, p, _shared(1, 2, 8, 8))
    with pytest.raises(ShareMismatchError, match="larger than the padded input"):
        layer.forward(key, p, _shared(1, 3, 2, 8))
    with pytest.raises(ShareMismatchError, match="channels"):
        conv.conv2d(key, _shared(1, 2, 5, 5), _shared(4, 3, 3, 3))
    with pytest.raises(ShareMismatchError, match="weight must have rank 4"):
        conv.conv2d(key, _shared(1, 3, 5, 5), _shared(4, 3, 3))
    with pytest.raises(ShareMismatchError, match="rank 4"):
        jaxmpc.nn.MaxPool2d(2).forward(key, {}, _shared(4, 4))
    with pytest.raises(ShareMismatchError, match="larger than the padded input"):
        jaxmpc.nn.AvgPool2d(3).forward(key, {}, _shared(1, 1, 2, 2))
    with pytest.raises(ShareMismatchError, match=r"padding \(2, 2\) must be at most half the kernel"):
        jaxmpc.nn.MaxPool2d(3, padding=2)
    with pytest.raises(ShareMismatchError, match=r"output size \(8, 8\) is larger than the input's \(5, 5\)"):
        jaxmpc.nn.AdaptiveAvgPool2d(8).forward(key, {}, _shared(1, 1, 5, 5))
    with pytest.raises(ShareMismatchError, match="dy must have shape"):
        conv.conv2d_weight_grad(key, _shared(1, 4, 2, 2), _shared(1, 3, 5, 5), kernel_size=3)
    with pytest.raises(ProtocolError, match="stride must be >= 1"):
        conv.Conv2d(3, 4, 3, stride=0)
    with pytest.raises(InputTypeError, match="padding must be an int or a pair"):
        conv.Conv2d(3, 4, 3, padding="same")
    with pytest.raises(InputTypeError, match="in_channels must be a positive int"):
        conv.Conv2d(0, 4, 3)
    with pytest.raises(InputTypeError, match=r"in_channels \(3\) and out_channels \(4\) must be multiples of groups \(2\)"):
        conv.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(InputTypeError, match="groups must be a positive int"):
        conv.conv2d(key, _shared(1, 2, 5, 5), _shared(4, 2, 3, 3), groups=0)
    with pytest.raises(ShareMismatchError, match=r"expects 1 per group in 2 group\(s\)"):
        conv.conv2d(key, _shared(1, 3, 5, 5), _shared(4, 1, 3, 3), groups=2)
    with pytest.raises(ShareMismatchError, match=r"spanning \(5, 5\) with dilation \(2, 2\)"):
        conv.conv2d(key, _shared(1, 2, 4, 4), _shared(4, 2, 3, 3), dilation=2)
    with pytest.raises(ShareMismatchError, match=r"Conv1d: input must be a jaxmpc.Shared \(batch, channels, length\)"):
        conv.Conv1d(2, 2, 3).forward(key, {"weight": _shared(2, 2, 3), "bias": _shared(2)}, _shared(1, 2, 4, 4))
    with pytest.raises(InputTypeError, match="jaxmpc.Shared"):
        conv.conv2d(key, np.zeros((1, 3, 5, 5)), _shared(4, 3, 3, 3))
    with pytest.raises(ProtocolError, match="2 parties"):
        conv.conv2d(key, _shared(1, 3, 5, 5, n=3), _shared(4, 3, 3, 3, n=3), truncation="local")


# ---- cost (traced, nothing runs) --------------------------------------------------------------------
def _sds(n, *shape, fxp=jaxmpc.FixedPoint(2, FXP_BITS)):
    return jaxmpc.Shared(jax.ShapeDtypeStruct((n,) + shape, jnp.uint64), fxp)


@pytest.mark.parametrize("n_p", [2, 3])
def test_conv_layer_cost_formula(n_p):
    b, c, h, w, o, k = 2, 3, 6, 6, 4, 3
    layer = conv.Conv2d(c, o, k, stride=2, padding=1)
    ho = wo = 3
    nx, nw, ny = b * c * h * w, o * c * k * k, b * o * ho * wo

    def step(key, p, x, dy):
        k_f, k_b = jax.random.split(key)
        y, res = layer.forward(k_f, p, x)
        return layer.backward(k_b, p, res, dy)

    p = {"weight": _sds(n_p, o, c, k, k), "bias": _sds(n_p, o)}
    r = jaxmpc.cost(step, jaxmpc.key(0), p, _sds(n_p, b, c, h, w), _sds(n_p, b, o, ho, wo))
    # one Beaver product per bilinear map: opens both operands, dealer sends a, b and c
    for name, opened, dealer in [("conv2d", nx + nw, nx + nw + ny),
                                 ("conv2d/weight_grad", ny + nx, ny + nx + nw),
                                 ("conv2d/input_grad", ny + nw, ny + nw + nx)]:
        op = r.ops[name]
        assert (op.calls, op.rounds, op.elements_opened) == (1, 1, opened), name
        assert op.bytes_per_party == 8 * (n_p - 1) * opened
        assert op.dealer_bytes_per_party == 8 * dealer
    trunc = r.ops["truncate/dealer"]  # y, dW and dx are truncated once each
    assert (trunc.calls, trunc.rounds, trunc.elements_opened) == (3, 3, ny + nw + nx)
    assert r.rounds == 6


@pytest.mark.parametrize("n_p", [2, 3])
def test_pooling_cost_formula(n_p):
    x, dy = _sds(n_p, 2, 3, 4, 4), _sds(n_p, 2, 3, 2, 2)
    ny = 2 * 3 * 2 * 2

    def step(layer):
        def f(key, x, dy):
            k_f, k_b = jax.random.split(key)
            y, res = layer.forward(k_f, {}, x)
            return layer.backward(k_b, {}, res, dy)
        return f

    fwd = jaxmpc.cost(lambda k, x: jaxmpc.nn.MaxPool2d(2).forward(k, {}, x), jaxmpc.key(0), x)
    assert fwd.rounds == jaxmpc.nn.pool.maxpool_rounds(4, n_p) == 2 * (jaxmpc.protocols.additive.binary.msb_rounds(n_p) + 1)
    # level 1 selects 2 pairs of values (public one-hot rows); level 2 one pair of values + 4 bits
    assert fwd.ops["mul"].elements_opened == 2 * (2 * ny) + (1 + (1 + 4)) * ny
    both = jaxmpc.cost(step(jaxmpc.nn.MaxPool2d(2)), jaxmpc.key(0), x, dy)
    back = both.ops["mul"].elements_opened - fwd.ops["mul"].elements_opened
    assert both.rounds == fwd.rounds + 1 and back == 4 * ny + ny  # one-hot bits and dy, no truncation
    avg = jaxmpc.cost(step(jaxmpc.nn.AvgPool2d(2)), jaxmpc.key(0), x, dy)
    assert list(avg.ops) == ["truncate/dealer"] and avg.rounds == 2
    assert avg.elements_opened == 2 * ny
    flat = jaxmpc.cost(step(jaxmpc.nn.Flatten()), jaxmpc.key(0), x, _sds(n_p, 2, 48))
    assert flat.rounds == 0 and flat.bytes_per_party == 0
