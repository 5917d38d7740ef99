"""One conformance suite for every protocol family x party count x ring it supports.

Every case runs a family's kernels, or a public function written once against them, and compares
the result with its plaintext twin (NumPy on the values the shares encode) within a stated bound in
units of 1/scale (0 where the protocol is exact). A family that registers itself in
:mod:`jaxmpc.protocols.interface` gets the whole suite: the parameter list is built from the
registry. Each protocol case runs under ``jax.jit``; the kernels that take a batch are also run
under :func:`jaxmpc.vmap` and compared with the same oracle.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc.core import im2col, ring
from jaxmpc.errors import ProtocolError, ShareMismatchError
from jaxmpc.nn import conv
from jaxmpc.protocols import interface
from jaxmpc.protocols.interface import Protocol

FXP = jaxmpc.FixedPoint(2, 16)
PARTIES = (2, 3, 5)
# Per ring: the fractional bits and the scale of the test values (Z_2^32 holds |x| s^2 < 2^30, so
# 10 bits leave room for products of magnitude up to 2^10).
FRACTIONAL = {64: 16, 32: 10}
MAGNITUDE = {64: 1.0, 32: 1 / 16}


def _protocols():
    out = []
    for name in interface.names():
        fam = interface.family(name)
        for bits in fam.rings:
            for n in PARTIES if bits == fam.rings[0] else PARTIES[:2]:  # other rings: 2 and 3 parties
                if fam.supports(n, bits):
                    out.append(pytest.param(interface.protocol(name, n, bits), id=f"{name}-{n}p-{bits}"))
    return out


PROTOCOLS = _protocols()


def _fxp(p: Protocol):
    return jaxmpc.FixedPoint(2, FRACTIONAL[p.ring_bits])


def _unit(p: Protocol) -> float:
    return 2.0 ** -FRACTIONAL[p.ring_bits]


def _share(key, x, p: Protocol, fxp=...):
    fxp = _fxp(p) if fxp is ... else fxp
    return jaxmpc.share(key, x, fxp, n_parties=p.n_parties, protocol=p.family, ring=p.ring_bits)


def _keys(seed, n):
    return jax.random.split(jax.random.key(seed), n)


def _encoded(x, p: Protocol):
    """The values a fixed-point sharing of ``x`` holds (the twin's inputs)."""
    unit = _unit(p)
    return np.round(np.asarray(x, np.float64) / unit) * unit


@functools.lru_cache(maxsize=None)
def _jitted(name, p: Protocol, **static):
    """One compiled function per (case, protocol): the suite shares them."""
    fam = interface.family(p.family)
    fns = {
        "share_open": lambda k, x: jaxmpc.reveal(_share(k, x, p)),
        "mul": lambda k, x, y: jaxmpc.reveal(jaxmpc.mul(k[2], _share(k[0], x, p), _share(k[1], y, p),
                                                        **static)),
        "mul_int": lambda k, x, b: jaxmpc.reveal(jaxmpc.mul(k[2], _share(k[0], x, p),
                                                            _share(k[1], b, p, None))),
        "matmul": lambda k, x, y: jaxmpc.reveal(jaxmpc.matmul(k[2], _share(k[0], x, p),
                                                              _share(k[1], y, p), **static)),
        "conv2d": lambda k, x, w: jaxmpc.reveal(conv.conv2d(k[2], _share(k[0], x, p),
                                                            _share(k[1], w, p), padding=1, **static)),
        "square_sum": lambda k, x: jaxmpc.reveal(jaxmpc.square_sum(k[1], _share(k[0], x, p),
                                                                   divisor=3, **static)),
        "truncate": lambda k, v, d: jaxmpc.reveal(jaxmpc.truncate(k[1], _share(k[0], v, p, None), d,
                                                                  **static)),
        "truncate_many": lambda k, u, v: [jaxmpc.reveal(z) for z in jaxmpc.protocols.arith.truncate_many(
            k[2], [_share(k[0], u, p, None), _share(k[1], v, p, None)], [7, 1000],
            **static)],
        "xor_and": lambda k, a, b: _xor_and(fam, p, k, a, b),
        "b2a": lambda k, bits: ring.to_signed(fam.kernel("open")(fam.kernel("b2a")(
            k[1], fam.kernel("xor_share")(k[0], bits, p.n_parties)))),
        "msb": lambda k, x: jaxmpc.reveal(jaxmpc.msb(k[1], _share(k[0], x, p), **static)),
        "relu": lambda k, x: [jaxmpc.reveal(v) for v in jaxmpc.relu(k[1], _share(k[0], x, p), **static)],
        "less": lambda k, x, y: jaxmpc.reveal(jaxmpc.less(k[2], _share(k[0], x, p), _share(k[1], y, p))),
        "maximum": lambda k, x, y: jaxmpc.reveal(jaxmpc.maximum(k[2], _share(k[0], x, p),
                                                                _share(k[1], y, p))),
        "sign": lambda k, x: jaxmpc.reveal(jaxmpc.sign(k[1], _share(k[0], x, p))),
        "sigmoid": lambda k, x: jaxmpc.reveal(jaxmpc.sigmoid(k[1], _share(k[0], x, p))),
        "linear": lambda k, x, w, dy: _linear(k, x, w, dy, p),
        "vmap_mul": lambda k, x, y: jaxmpc.reveal(jaxmpc.vmap(
            lambda kk, a, b: jaxmpc.mul(kk, a, b, **static))(k[2:], _share(k[0], x, p), _share(k[1], y, p))),
        "vmap_msb": lambda k, x: jaxmpc.reveal(jaxmpc.vmap(lambda kk, a: jaxmpc.msb(kk, a))(
            k[1:], _share(k[0], x, p))),
    }
    return jax.jit(fns[name])


def _xor_and(fam, p, k, a, b):
    xa = fam.kernel("xor_share")(k[0], a, p.n_parties)
    xb = fam.kernel("xor_share")(k[1], b, p.n_parties)
    return ring.party_xor(xa), ring.party_xor(fam.kernel("and")(k[2], xa, xb, "and"))


def _linear(k, x, w, dy, p):
    """Forward and backward of a Linear layer (its manual gradients: the twin is jax.vjp's)."""
    layer = jaxmpc.nn.Linear(3, 2)
    params = {"weight": _share(k[1], w, p), "bias": _share(k[2], np.zeros(2), p)}
    y, res = layer.forward(k[3], params, _share(k[0], x, p))
    grads, dx = layer.backward(k[5], params, res, _share(k[4], dy, p))
    return jaxmpc.reveal((y, grads["weight"], dx))


def _rng(seed):
    return np.random.default_rng(seed)


def _within(got, want, units, what, p: Protocol):
    err = np.max(np.abs(np.asarray(got, np.float64) - want)) / _unit(p) if np.size(want) else 0.0
    assert err <= units, f"{what}: {err:.3f} units from the plaintext twin, bound {units}"


def _truncations(p):
    return interface.family(p.family).truncations_at(p.n_parties)


@pytest.mark.parametrize("p", PROTOCOLS)
def test_share_open(p):
    for shape in [(), (0,), (3, 2)]:
        x = _rng(0).normal(size=shape) * 50 * MAGNITUDE[p.ring_bits]
        _within(_jitted("share_open", p)(jax.random.key(1), x), _encoded(x, p), 0, f"share/open {shape}", p)


@pytest.mark.parametrize("p", PROTOCOLS)
def test_products(p):
    r = _rng(1)
    mag = 8 * MAGNITUDE[p.ring_bits] ** 0.5
    x, y = r.normal(size=(4, 3)) * mag, r.normal(size=(4, 3)) * mag
    ex, ey = _encoded(x, p), _encoded(y, p)
    for t in _truncations(p):  # one truncation: at most 1 unit (local: with prob. 1 - |x|/2^(l-1))
        _within(_jitted("mul", p, truncation=t)(_keys(2, 3), x, y), ex * ey, 1, f"mul {t}", p)
        w = r.normal(size=(3, 5))
        _within(_jitted("matmul", p, truncation=t)(_keys(3, 3), x, w), ex @ _encoded(w, p), 1,
                f"matmul {t}", p)
    bits = r.integers(0, 2, size=(4, 3))
    _within(_jitted("mul_int", p)(_keys(4, 3), x, bits), ex * bits, 0, "mul by a plain integer", p)


@pytest.mark.parametrize("p", PROTOCOLS)
def test_conv2d(p):
    r = _rng(2)
    x, w = r.normal(size=(1, 2, 4, 4)), r.normal(size=(3, 2, 3, 3))
    want = np.asarray(im2col.conv2d_plain(jnp.asarray(_encoded(x, p)), jnp.asarray(_encoded(w, p)), padding=1))
    _within(_jitted("conv2d", p)(_keys(5, 3), x, w), want, 1, "conv2d", p)


@pytest.mark.parametrize("p", PROTOCOLS)
def test_square_sum_and_truncation(p):
    r = _rng(3)
    x = r.normal(size=(6,)) * 4 * MAGNITUDE[p.ring_bits] ** 0.5
    _within(_jitted("square_sum", p)(_keys(6, 2), x), np.sum(_encoded(x, p) ** 2) / 3, 1, "square_sum", p)
    top = {64: 40, 32: 20}[p.ring_bits]  # ring integers well inside the headroom
    v = r.integers(-2**top, 2**top, size=(5,))
    for t in _truncations(p):
        for d in (3, 7, 1000):  # ring integers: |y - v/d| < 1 (the unit is 1 here)
            got = _jitted("truncate", p, truncation=t)(_keys(7, 2), v, d)
            assert np.max(np.abs(np.asarray(got) - v / d)) < 1, f"truncate by {d} ({t})"
        u = r.integers(-2**(top - 10), 2**(top - 10), size=(2, 3))
        a, b = _jitted("truncate_many", p, truncation=t)(_keys(8, 3), u, v)
        a, b = np.asarray(a), np.asarray(b)
        assert np.max(np.abs(a - u / 7)) < 1 and np.max(np.abs(b - v / 1000)) < 1, f"truncate_many ({t})"


@pytest.mark.parametrize("p", PROTOCOLS)
def test_binary_kernels(p):
    r = _rng(4)
    words = ring.dtype(p.ring_bits)
    top = np.uint64(1) << np.uint64(p.ring_bits - 1)
    a = jnp.asarray((r.integers(0, top, size=(7,), dtype=np.uint64) * np.uint64(2) + np.uint64(1)).astype(words))
    b = jnp.asarray(r.integers(0, top, size=(7,), dtype=np.uint64).astype(words))
    opened, anded = _jitted("xor_and", p)(_keys(9, 3), a, b)
    np.testing.assert_array_equal(opened, a, err_msg="xor_share then XOR-open")
    np.testing.assert_array_equal(anded, a & b, err_msg="and")
    bits = jnp.asarray(r.integers(0, 2, size=(9,)), words)
    np.testing.assert_array_equal(_jitted("b2a", p)(_keys(10, 2), bits), bits, err_msg="b2a")


@pytest.mark.parametrize("p", PROTOCOLS)
def test_comparisons(p):
    unit, big = _unit(p), 1e4 * MAGNITUDE[p.ring_bits] ** 2.5
    x = np.array([-3.5, -unit, 0.0, unit, 2.25, big])
    y = np.array([-3.5, 0.0, -1.0, 2 * unit, 3.0, -big])
    ex, ey = _encoded(x, p), _encoded(y, p)
    modes = interface.MODES
    for mode in modes:
        np.testing.assert_array_equal(_jitted("msb", p, mode=mode)(_keys(11, 2), x), ex < 0, err_msg=mode)
        out, d = _jitted("relu", p, mode=mode)(_keys(12, 2), x)
        _within(out, np.maximum(ex, 0), 0, f"relu {mode}", p)
        np.testing.assert_array_equal(d, ex > 0, err_msg=f"drelu {mode}")
    np.testing.assert_array_equal(_jitted("less", p)(_keys(13, 3), x, y), ex < ey)
    _within(_jitted("maximum", p)(_keys(14, 3), x, y), np.maximum(ex, ey), 0, "maximum", p)
    np.testing.assert_array_equal(_jitted("sign", p)(_keys(15, 2), x), np.sign(ex))


@pytest.mark.parametrize("p", PROTOCOLS)
def test_functions_above_the_kernels(p):
    x = np.linspace(-6, 6, 7)
    got = _jitted("sigmoid", p)(_keys(16, 2), x)  # the documented bound of jaxmpc.sigmoid on |x| <= 256
    # 2e-3 at 16 bits; at 10 bits (Z_2^32) the iterations' rounding grows it to 0.011 (measured)
    bound = 2e-3 if p.ring_bits == 64 else 0.02
    assert np.max(np.abs(got - 1 / (1 + np.exp(-_encoded(x, p))))) < bound
    r = _rng(5)
    xs, w, dy = r.normal(size=(4, 3)), r.normal(size=(2, 3)), r.normal(size=(4, 2))
    ex, ew, edy = (jnp.asarray(_encoded(v, p)) for v in (xs, w, dy))
    plain = jaxmpc.nn.Linear(3, 2).plain
    want_y, vjp = jax.vjp(lambda w_, x_: plain({"weight": w_, "bias": jnp.zeros(2)}, x_), ew, ex)
    want_dw, want_dx = vjp(edy)
    y, dw, dx = _jitted("linear", p)(_keys(17, 6), xs, w, dy)
    for got, want, what in ((y, want_y, "forward"), (dw, want_dw, "dW"), (dx, want_dx, "dx")):
        _within(got, np.asarray(want), 1, f"Linear {what}", p)


@pytest.mark.parametrize("p", PROTOCOLS)
def test_under_vmap(p):
    r = _rng(6)
    x, y = r.normal(size=(3, 4)), r.normal(size=(3, 4))
    _within(_jitted("vmap_mul", p)(_keys(18, 5), x, y), _encoded(x, p) * _encoded(y, p), 1, "vmap(mul)", p)
    np.testing.assert_array_equal(_jitted("vmap_msb", p)(_keys(19, 4), x), _encoded(x, p) < 0)


def test_every_family_has_cases():
    fams = {p.values[0].family for p in PROTOCOLS}
    assert fams == set(interface.names()) and len(PROTOCOLS) >= len(fams)


def test_mixing_protocols_raises():
    x = jaxmpc.share(jax.random.key(0), [1.0, 2.0], FXP)
    other = jaxmpc.share(jax.random.key(4), [1.0, 2.0], jaxmpc.FixedPoint(2, 10), ring=32)  # never mixed
    with pytest.raises(ShareMismatchError, match="different protocols"):
        jaxmpc.mul(jax.random.key(1), x, other)
    with pytest.raises(ShareMismatchError, match="different protocols"):
        x + other
    with pytest.raises(ShareMismatchError, match="Z_2\\^64"):  # shares of one ring, protocol of another
        jaxmpc.Shared(x.shares, FXP, Protocol("additive", 2, 32))
    y = jaxmpc.share(jax.random.key(2), [1.0, 2.0], FXP, n_parties=3)
    with pytest.raises(ShareMismatchError):
        jaxmpc.less(jax.random.key(3), x, y)


def test_protocol_options_checked_before_work():
    k = jax.random.key(0)
    with pytest.raises(ProtocolError, match="registered families"):
        jaxmpc.share(k, [1.0], FXP, protocol="replicated-typo")
    with pytest.raises(ProtocolError, match="ring"):
        jaxmpc.share(k, [1.0], FXP, ring=48)
    with pytest.raises(ProtocolError, match="local"):
        jaxmpc.run.config.check(n_parties=3, truncation="local")
    x = jaxmpc.share(k, [1.0], FXP)
    assert x.protocol == Protocol("additive", 2, 64)
    assert jax.tree_util.tree_structure(x) != jax.tree_util.tree_structure(
        jaxmpc.share(jax.random.key(1), [1.0], jaxmpc.FixedPoint(2, 10), ring=32))  # static: jit specialises on it


def test_suite_rejects_a_broken_family(monkeypatch):
    """Control: a family whose ``open`` forgets the last party's share, or whose ``product``
    drops a cross term, fails the suite's cases (the oracle is not vacuous)."""
    base = interface.family("additive")
    bad_open = dict(base.kernels, open=interface.Kernel(lambda s: ring.party_sum(s[:-1]), "broken"))

    def bad_product(key, x, y, op, name, truncation, mode, op_opened):
        z = base.kernel("product")(key, x, y, op, name, truncation, mode, op_opened)
        return z + 1  # a public offset of one unit on every product

    bad_prod = dict(base.kernels, product=interface.Kernel(bad_product, "broken"))
    for name, kernels, case in (("broken-open", bad_open, test_share_open),
                                ("broken-product", bad_prod, test_products)):
        fam = interface.Family(name, base.rings, 2, 2, kernels, base.truncations, base.check_truncation)
        monkeypatch.setitem(interface._FAMILIES, name, fam)
        with pytest.raises(AssertionError):
            case(interface.protocol(name, 2, 64))
