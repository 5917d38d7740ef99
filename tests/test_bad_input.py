"""Malformed input at the public API (property-based, hypothesis): every case raises a jaxmpc error
(a class of :mod:`jaxmpc.errors`, deriving from ``ValueError`` or ``TypeError``) whose message names
what was expected, before any work is done: the key passed in is still unconsumed afterwards
(``jax_debug_key_reuse`` is on in the tests, so a consumed key could not be split again).

Categories (one test each): non-finite values, values too large for the encoding, wrong dtypes
(bool, complex, strings; integer arrays are *accepted* by ``share`` and encoded exactly), shapes that
do not fit, operands with different encodings or party counts, precisions the ring cannot hold,
wrong key types and seeds, divisors outside the truncation's range, malformed layer / optimizer
arguments, reused keys, and the same structural checks under ``jax.jit``.

What is checked when. Types, dtypes, shapes, party counts, encodings (base, rounding, and the
precision when it is concrete) and key types are static, so they are checked under ``jit`` and
``vmap`` too. Values (NaN, inf, magnitude, divisor range) can only be checked on concrete arrays:
inside ``jit`` a traced value is not inspected (use :mod:`jaxmpc.trace.diagnostics` to count values out
of range in traced code), and a precision carried into ``jit`` inside a ``Shared`` is traced, so a
precision mismatch (same base) goes unnoticed there; build the :class:`~jaxmpc.FixedPoint` inside
the jitted function, or check eagerly first. Key reuse is caught by JAX's own checker
(``jax.errors.KeyReuseError``, a ``TypeError``) when ``jax_debug_key_reuse`` is on.

Figures (derandomized, so every CI run draws the same cases): 467 examples in 18 property tests
(30 per category, fewer where the space is small). Probing the API while writing them found 17
failures, all fixed in the library. Six silent wrong results: ``sse`` / ``mse`` with a broadcasting
target, ``nn.serial`` with a short params list, ``truncate_shares`` with a divisor of 0 or a
float, ``FixedPoint.encode`` of NaN / too large values, ``jaxmpc.key(1.5)`` (== ``key(1)``) and
``key(True)``. Nine raw or non-jaxmpc errors: ``key`` of strings, None, arrays or 2^63; ``x - v``
with a bool or string ``v``; ``concatenate`` of other ranks; ``truncate_shares`` with a bad key,
int64 shares, one party, a negative or mis-shaped divisor; ``div_public(x, 2**70)``; ``sgd`` with
mixed party counts or an array learning rate; ``mse`` with a bad key; ``Linear`` without its params
(a bare ``KeyError``); the plain ``TypeError`` of ``x * x``. Two keys consumed before the error:
``maximum`` and ``sgd.update``.

One-off cases (a table, no property test) cover axes out of range, the iteration ranges of
:func:`jaxmpc.ops.approx.exp` and :func:`~jaxmpc.ops.approx.tanh`, the arguments of
:func:`jaxmpc.ops.approx.domain` and :mod:`jaxmpc.ops.accuracy`, ragged lists, the operators ``/ // **`` on a :class:`~jaxmpc.Shared`, reshape,
and the arguments of :mod:`jaxmpc.trace.accounting`, :mod:`jaxmpc.core.gemm` and :mod:`jaxmpc.trace.diagnostics`.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import jaxmpc
from jaxmpc import FixedPoint, Shared, diagnostics, nn
from jaxmpc.trace import accounting
from jaxmpc.ops import accuracy, approx
from jaxmpc.core import gemm
from jaxmpc.nn import optim
from jaxmpc.errors import (BatchingRuleError, EncodingError, InputTypeError, JaxMPCError, ProtocolError,
                           ShareMismatchError, UnknownNameError)
from jaxmpc.core.fixedpoint import HEADROOM_BITS, max_precision

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
_SEED = iter(range(10**6))


def fresh_key():
    return jaxmpc.key(next(_SEED))


@functools.cache
def fxp_of(base: int, precision: int, rounding: str = "nearest") -> FixedPoint:
    return FixedPoint(base, precision, rounding)


@functools.cache
def shared(shape: tuple, n: int = 2, enc: tuple | None = (10, 3), fill: float = 1.0) -> Shared:
    """A valid Shared of the given shape, party count and encoding, built in numpy (no compile per
    shape; cached). Its shares sum to the encoded ``fill``."""
    fxp = None if enc is None else fxp_of(*enc)
    scale = 1.0 if enc is None else float(enc[0]) ** enc[1]
    v = np.full(shape, np.int64(round(fill * scale))).astype(np.uint64)
    masks = np.random.default_rng(len(shape) + 10 * n).integers(0, 2**64, (n - 1,) + shape, np.uint64)
    return Shared(jnp.asarray(np.concatenate([masks, (v - masks.sum(0, dtype=np.uint64))[None]])), fxp)


def expect(exc, pattern: str, fn, key=None):
    """``fn()`` raises ``exc`` (a jaxmpc error and a ValueError / TypeError) matching ``pattern``,
    and ``key`` was not consumed: the error came before any work."""
    with pytest.raises(exc, match=pattern) as info:
        fn()
    assert isinstance(info.value, JaxMPCError) and isinstance(info.value, (ValueError, TypeError))
    if key is not None:
        jax.random.split(key)  # raises KeyReuseError if the failed call had consumed the key


# ---- strategies -----------------------------------------------------------------------------------
ENCODINGS = [(10, 3), (10, 0), (10, 9), (2, 16), (2, 30), (2, 0)]
SHAPES = [(), (1,), (3,), (2, 3)]
encodings = st.sampled_from(ENCODINGS)
parties = st.sampled_from([2, 3, 5])
shapes = st.sampled_from(SHAPES)


def limit(enc) -> float:
    """The smallest magnitude the encoding rejects: |x| s^2 >= 2^62."""
    s = float(enc[0]) ** enc[1]
    return 2.0**HEADROOM_BITS / (s * s)


@st.composite
def with_bad_value(draw, bad: st.SearchStrategy):
    """(shape, array of that shape) with one element drawn from ``bad`` and the rest finite."""
    shape = draw(st.sampled_from([(), (1,), (3,), (2, 3)]))
    size = int(np.prod(shape, dtype=np.int64))
    values = np.array(draw(st.lists(st.floats(-10, 10), min_size=size, max_size=size)), np.float64)
    values[draw(st.integers(0, size - 1))] = draw(bad)
    return shape, values.reshape(shape)


def public_targets(x: Shared, v, key):
    """Every API entry that takes a public real operand ``v`` next to a shared ``x``."""
    return {
        "share": lambda: jaxmpc.share(key, v, x.fxp, n_parties=x.n_parties),
        "x + v": lambda: x + v, "v + x": lambda: v + x, "x - v": lambda: x - v,
        "v - x": lambda: v - x,
        "mul_public": lambda: jaxmpc.mul_public(key, x, v),
        "less": lambda: jaxmpc.less(key, x, v), "greater": lambda: jaxmpc.greater(key, v, x),
        "maximum": lambda: jaxmpc.maximum(key, x, v),
        "encode": lambda: x.fxp.encode(v),
        "sse target": lambda: jaxmpc.nn.losses.sse(key, x, v),
        "mse target": lambda: jaxmpc.nn.losses.mse(key, x, v),
    }


TARGET_NAMES = list(public_targets(shared((1,)), 0.0, None))


# ---- values -----------------------------------------------------------------------------------------
@SETTINGS
@given(case=with_bad_value(st.sampled_from([np.nan, np.inf, -np.inf])), enc=encodings,
       n=parties, target=st.sampled_from(TARGET_NAMES))
def test_nonfinite_values(case, enc, n, target):
    shape, v = case
    key = fresh_key()
    fn = public_targets(shared(shape, n, enc), v, key)[target]
    expect(EncodingError, "NaN or infinite", fn, key)


@st.composite
def too_large(draw):
    enc = draw(encodings)
    lim = limit(enc)
    if draw(st.booleans()):  # a float at or above the limit
        big = draw(st.floats(min_value=lim, max_value=1e300))
    else:  # an integer (int64) at or above the limit
        big = float(draw(st.integers(min_value=int(np.ceil(lim)), max_value=2**63 - 1)))
    case = draw(with_bad_value(st.just(big * draw(st.sampled_from([1, -1])))))
    return enc, case


@SETTINGS
@given(data=too_large(), n=parties, target=st.sampled_from(TARGET_NAMES))
def test_values_too_large_for_the_encoding(data, n, target):
    enc, (shape, v) = data
    key = fresh_key()
    fn = public_targets(shared(shape, n, enc), v, key)[target]
    expect(EncodingError, r"magnitude .* must be < .* precision", fn, key)


@SETTINGS
@given(enc=encodings, n=parties, scale=st.floats(0.0, 1 - 1e-9))
def test_largest_accepted_values_are_encoded_exactly(enc, n, scale):
    """The other side of the limit: integer arrays below it are accepted by share and come back
    exactly (integers are encoded like their float value)."""
    top = int(np.floor(limit(enc) * scale))
    v = np.array([min(top, 2**53), -min(top, 2**53), 0], np.int64)
    out = jaxmpc.reveal(jaxmpc.share(fresh_key(), v, fxp_of(*enc), n_parties=n))
    np.testing.assert_array_equal(np.asarray(out), v.astype(np.float64))


# ---- dtypes ----------------------------------------------------------------------------------------
BAD_DTYPES = {
    "bool": (np.array([True, False]), "bool"),
    "complex": (np.array([1 + 2j, 0j]), "complex|real numeric"),
    "string": (np.array(["1.0", "2"]), "<U|real numeric"),
    "object": (np.array([1, None], dtype=object), "object"),
}


@SETTINGS
@given(kind=st.sampled_from(list(BAD_DTYPES)), n=parties,
       target=st.sampled_from(TARGET_NAMES + ["x * v", "share fxp=None float"]))
def test_wrong_dtypes(kind, n, target):
    v, what = BAD_DTYPES[kind]
    key = fresh_key()
    x = shared((2,), n)
    if target == "x * v":
        expect(InputTypeError, "integers locally", lambda: x * v)
    elif target == "share fxp=None float":
        expect(InputTypeError, "integers only", lambda: jaxmpc.share(key, np.array([0.5, 1.0]), None), key)
    else:
        expect(InputTypeError, what, public_targets(x, v, key)[target], key)


# ---- shapes ----------------------------------------------------------------------------------------
def _broadcasts(a, b) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


ALL_SHAPES = [(), (1,), (2,), (3,), (2, 3), (3, 2), (4, 3), (2, 1, 3)]
clashing = st.tuples(st.sampled_from(ALL_SHAPES), st.sampled_from(ALL_SHAPES)).filter(
    lambda ab: not _broadcasts(*ab))


@SETTINGS
@given(shapes_=clashing, n=parties, op=st.sampled_from(
    ["x + y", "x - y", "mul", "less", "maximum", "where", "x + public", "mul_public", "concatenate"]))
def test_shapes_that_do_not_broadcast(shapes_, n, op):
    a, b = shapes_
    key = fresh_key()
    x, y = shared(a, n), shared(b, n)
    bit = shared(b, n, None)
    calls = {
        "x + y": lambda: x + y, "x - y": lambda: x - y, "mul": lambda: jaxmpc.mul(key, x, y),
        "less": lambda: jaxmpc.less(key, x, y), "maximum": lambda: jaxmpc.maximum(key, x, y),
        "where": lambda: jaxmpc.where(key, bit, x, x), "x + public": lambda: x + np.ones(b),
        "mul_public": lambda: jaxmpc.mul_public(key, x, np.ones(b)),
        "concatenate": lambda: jaxmpc.concatenate([x, y], axis=0),
    }
    # legal: shapes may differ along the concatenation axis
    assume(not (op == "concatenate" and len(a) == len(b) and a and a[1:] == b[1:]))
    expect(ShareMismatchError, "broadcast|same rank|out of range", calls[op],
           key if op not in ("x + y", "x - y", "x + public", "concatenate") else None)


@SETTINGS
@given(k=st.sampled_from([1, 2, 4, 5]), p=st.sampled_from([1, 2]), n=parties, layer=st.booleans())
def test_matmul_and_linear_inner_dimensions(k, p, n, layer):
    """(2, 3) @ (k, p) with k != 3, and a Linear(k, p) layer fed a (2, 3) input."""
    key = fresh_key()
    x = shared((2, 3), n)
    if layer:
        lin, params = nn.Linear(k, p), {"weight": shared((p, k), n), "bias": shared((p,), n)}
        expect(ShareMismatchError, "not compatible", lambda: lin.forward(key, params, x), key)
    else:
        expect(ShareMismatchError, "not compatible", lambda: jaxmpc.matmul(key, x, shared((k, p), n)), key)


@SETTINGS
@given(shapes_=st.tuples(st.sampled_from(ALL_SHAPES), st.sampled_from(ALL_SHAPES)).filter(
    lambda ab: ab[0] != ab[1]), n=parties, loss=st.sampled_from(["sse", "mse"]),
    public=st.booleans())
def test_loss_target_of_another_shape(shapes_, n, loss, public):
    """Even shapes that broadcast are rejected: (B, 1) against (B,) would silently give (B, B)."""
    a, b = shapes_
    key = fresh_key()
    target = np.ones(b) if public else shared(b, n)
    fn = getattr(jaxmpc.nn.losses, loss)
    expect(ShareMismatchError, r"target must have pred's shape", lambda: fn(key, shared(a, n), target), key)


# ---- encodings and party counts -------------------------------------------------------------------
ALL_ENCODINGS = ENCODINGS + [(10, 3, "trunc"), None]


@SETTINGS
@given(pair=st.tuples(st.sampled_from(ALL_ENCODINGS), st.sampled_from(ALL_ENCODINGS)).filter(
    lambda ab: ab[0] != ab[1]), n=parties,
    op=st.sampled_from(["x + y", "y - x", "mul", "matmul", "less", "maximum", "concatenate", "sse"]))
def test_operands_with_different_encodings(pair, n, op):
    ea, eb = pair
    assume(not (op in ("mul", "matmul") and None in pair))  # a plain-integer factor (0/1 bit) is legal
    assume(not (op == "sse" and ea is None))  # a plain-integer prediction: another error
    key = fresh_key()
    x, y = shared((2, 2), n, ea), shared((2, 2), n, eb)
    calls = {"x + y": lambda: x + y, "y - x": lambda: y - x, "mul": lambda: jaxmpc.mul(key, x, y),
             "matmul": lambda: jaxmpc.matmul(key, x, y), "less": lambda: jaxmpc.less(key, x, y),
             "maximum": lambda: jaxmpc.maximum(key, x, y),
             "concatenate": lambda: jaxmpc.concatenate([x, y]),
             "sse": lambda: jaxmpc.nn.losses.sse(key, x, y)}
    expect(ShareMismatchError, "different (encodings|precisions)", calls[op],
           key if op not in ("x + y", "y - x", "concatenate") else None)


@SETTINGS
@given(pair=st.tuples(st.integers(2, 5), st.integers(2, 5)).filter(lambda ab: ab[0] != ab[1]),
       op=st.sampled_from(["x + y", "x - y", "mul", "matmul", "less", "maximum", "where",
                           "concatenate", "sgd", "sse"]))
def test_operands_with_different_party_counts(pair, op):
    na, nb = pair
    key = fresh_key()
    x, y = shared((2, 2), na), shared((2, 2), nb)
    bit = shared((2, 2), nb, None)
    opt = optim.sgd(0.1, key=key) if op == "sgd" else None
    calls = {"x + y": lambda: x + y, "x - y": lambda: x - y, "mul": lambda: jaxmpc.mul(key, x, y),
             "matmul": lambda: jaxmpc.matmul(key, x, y), "less": lambda: jaxmpc.less(key, x, y),
             "maximum": lambda: jaxmpc.maximum(key, x, y),
             "where": lambda: jaxmpc.where(key, bit, x, x),
             "concatenate": lambda: jaxmpc.concatenate([x, y]),
             "sgd": lambda: opt.update({"a": x, "b": y}, opt.init({"a": x, "b": y})),
             "sse": lambda: jaxmpc.nn.losses.sse(key, x, y)}
    expect(ShareMismatchError, "different numbers of parties", calls[op],
           key if op not in ("x + y", "x - y", "concatenate", "sgd") else None)


# ---- precisions, bases, FixedPoint arguments ---------------------------------------------------------
@SETTINGS
@given(base=st.sampled_from([2, 10]), data=st.data())
def test_precisions_the_ring_cannot_hold(base, data):
    """A product of two encoded values needs scale^2 < 2^62: base 10 allows 0..9, base 2 0..30."""
    top = max_precision(base)
    p = data.draw(st.one_of(st.integers(top + 1, 10**6), st.integers(-(10**6), -1)))
    expect(EncodingError, rf"base {base} allows precision 0\.\.{top}", lambda: FixedPoint(base, p))
    assert (float(base) ** top) ** 2 < 2.0**HEADROOM_BITS <= (float(base) ** (top + 1)) ** 2


@SETTINGS
@given(arg=st.sampled_from(["base", "precision", "rounding"]), bad=st.sampled_from(
    [3, 10.0, 2.5, True, None, "10", np.array([3]), np.ones(2), 1 + 0j]))
def test_fixedpoint_argument_types(arg, bad):
    assume(not (arg == "precision" and type(bad) is int))  # 3 is a valid precision
    kwargs = {"base": 10, "precision": 3, "rounding": "nearest", arg: bad}
    expect(InputTypeError, arg, lambda: FixedPoint(**kwargs))


# ---- keys ------------------------------------------------------------------------------------------
BAD_KEYS = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True), st.none(), st.text(max_size=3),
    st.sampled_from([np.zeros(3, np.uint32), np.zeros((2, 2), np.uint32), np.zeros(2, np.int64),
                     np.zeros(2, np.float32), np.uint32(7), [0, 1]]),
    st.integers(2, 4).map(lambda k: jax.random.split(jaxmpc.key(1), k)),  # a batch of keys
)


def key_targets(key):
    """Every API entry that takes a key, with otherwise valid arguments."""
    x, bit = shared((2, 2)), shared((2, 2), 2, None)
    lin = nn.Linear(2, 2)
    params = {"weight": shared((2, 2)), "bias": shared((2,))}
    return {
        "share": lambda: jaxmpc.share(key, np.ones(2), fxp_of(10, 3)),
        "mul": lambda: jaxmpc.mul(key, x, x), "matmul": lambda: jaxmpc.matmul(key, x, x),
        "mul_public": lambda: jaxmpc.mul_public(key, x, 0.5),
        "div_public": lambda: jaxmpc.div_public(key, x, 3),
        "truncate_shares": lambda: jaxmpc.truncate_shares(key, x.shares, 1000),
        "msb": lambda: jaxmpc.msb(key, x), "relu": lambda: jaxmpc.relu(key, x),
        "less": lambda: jaxmpc.less(key, x, 0.0), "greater": lambda: jaxmpc.greater(key, x, x),
        "maximum": lambda: jaxmpc.maximum(key, x, x), "sign": lambda: jaxmpc.sign(key, x),
        "where": lambda: jaxmpc.where(key, bit, x, x),
        "square_sum": lambda: jaxmpc.square_sum(key, x),
        "Linear.forward": lambda: lin.forward(key, params, x),
        "sse": lambda: jaxmpc.nn.losses.sse(key, x, x), "mse": lambda: jaxmpc.nn.losses.mse(key, x, x),
        "sgd": lambda: optim.sgd(0.1, key=key),
    }


KEY_TARGETS = list(key_targets(None))


@SETTINGS
@given(bad=BAD_KEYS, target=st.sampled_from(KEY_TARGETS))
def test_wrong_key_types(bad, target):
    expect(InputTypeError, "PRNG key", key_targets(bad)[target])


@SETTINGS
@given(seed=st.one_of(st.floats(allow_nan=True), st.none(), st.text(max_size=3), st.booleans(),
                      st.integers(2**63, 2**80), st.integers(-(2**80), -(2**63) - 1),
                      st.sampled_from([np.array([1, 2]), np.float32(1.0), np.bool_(True)])))
def test_bad_seeds(seed):
    exc = EncodingError if isinstance(seed, int) and not isinstance(seed, bool) else InputTypeError
    expect(exc, "seed", lambda: jaxmpc.key(seed))


def test_good_seeds_and_a_key_passed_as_seed():
    for seed in (0, -1, 2**63 - 1, -(2**63), np.int32(5), np.uint64(7), jnp.int64(3)):
        jaxmpc.key(seed)
    expect(InputTypeError, "already is a key", lambda: jaxmpc.key(jaxmpc.key(0)))
    assert jax.vmap(jaxmpc.key)(jnp.arange(3)).shape == (3,)
    expect(InputTypeError, "traced seed", lambda: jax.vmap(jaxmpc.key)(jnp.ones(3)))


REUSE = {  # (first use, second use) of one key: the second must raise JAX's KeyReuseError
    "share": lambda k: jaxmpc.share(k, np.ones(2), fxp_of(10, 3)),
    "mul": lambda k: jaxmpc.mul(k, shared((2,)), shared((2,))),
    "mul_public": lambda k: jaxmpc.mul_public(k, shared((2,)), 0.5),
    "div_public": lambda k: jaxmpc.div_public(k, shared((2,)), 3),
    "split": lambda k: jax.random.split(k),
}


@settings(max_examples=10, deadline=None, derandomize=True)
@given(first=st.sampled_from(list(REUSE)), second=st.sampled_from(list(REUSE)))
def test_reused_keys(first, second):
    key = fresh_key()
    REUSE[first](key)
    with pytest.raises(jax.errors.KeyReuseError):
        REUSE[second](key)


# ---- divisors, layers, optimizer ------------------------------------------------------------------
@SETTINGS
@given(d=st.one_of(st.integers(max_value=0), st.integers(2**62, 2**80),
                   st.floats(0.5, 1e6).filter(lambda f: f != int(f)), st.booleans(),
                   st.sampled_from([np.uint64(0), np.array([0, 1], np.uint64), np.float32(3)])),
       via=st.sampled_from(["truncate_shares", "div_public"]), n=parties)
def test_divisors_outside_the_range(d, via, n):
    key = fresh_key()
    x = shared((2,), n)
    if via == "div_public":
        expect(InputTypeError, "positive Python int below 2", lambda: jaxmpc.div_public(key, x, d), key)
    else:
        exc = ProtocolError if np.issubdtype(np.asarray(d).dtype if not isinstance(d, int) or
                                             isinstance(d, bool) else np.int64, np.integer) \
            and not isinstance(d, (bool, np.bool_)) else InputTypeError
        expect(exc, "divisor must", lambda: jaxmpc.truncate_shares(key, x.shares, d), key)


@SETTINGS
@given(bad=st.sampled_from(["empty", "list", "missing bias", "wrong weight", "short serial"]),
       n=parties)
def test_malformed_layer_parameters(bad, n):
    key = fresh_key()
    x = shared((2, 3), n)
    lin = nn.Linear(3, 2)
    good = {"weight": shared((2, 3), n), "bias": shared((2,), n)}
    if bad == "short serial":
        model = nn.serial(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
        expect(InputTypeError, "one entry per layer", lambda: model.forward(key, [good, {}], x), key)
        return
    params = {"empty": {}, "list": [good], "missing bias": {"weight": good["weight"]},
              "wrong weight": {"weight": shared((2, 4), n), "bias": good["bias"]}}[bad]
    exc = ShareMismatchError if bad == "wrong weight" else InputTypeError
    expect(exc, r"Linear\(3, 2\): params", lambda: lin.forward(key, params, x), key)


@SETTINGS
@given(lr=st.one_of(st.sampled_from([np.nan, np.inf, -np.inf]), st.just([0.1, 0.2]),
                    st.sampled_from(["0.1", True, np.ones(2)])),
       which=st.sampled_from(["learning_rate", "momentum"]))
def test_optimizer_hyperparameters(lr, which):
    key = fresh_key()
    kwargs = {"learning_rate": 0.1, "momentum": None, which: lr}
    nonfinite = isinstance(lr, float) and not np.isfinite(lr)
    expect(EncodingError if nonfinite else InputTypeError, which,
           lambda: optim.sgd(kwargs["learning_rate"], key=key, momentum=kwargs["momentum"]), key)


# ---- under jit: structural checks still run at trace time -------------------------------------------
STRUCTURAL = {
    "parties": (ShareMismatchError, "different numbers of parties",
                lambda k, a, b: jaxmpc.mul(k, a, b), ((2, 2), 2, (10, 3)), ((2, 2), 3, (10, 3))),
    "base": (ShareMismatchError, "different encodings",
             lambda k, a, b: jaxmpc.matmul(k, a, b), ((2, 2), 2, (10, 3)), ((2, 2), 2, (2, 16))),
    "shape": (ShareMismatchError, "broadcast", lambda k, a, b: jaxmpc.less(k, a, b),
              ((2, 3), 3, (10, 3)), ((4,), 3, (10, 3))),
    "loss shape": (ShareMismatchError, "pred's shape", lambda k, a, b: jaxmpc.nn.losses.mse(k, a, b),
                   ((2, 1), 2, (2, 16)), ((2,), 2, (2, 16))),
    "key": (InputTypeError, "PRNG key", lambda k, a, b: jaxmpc.relu(jnp.zeros(3, jnp.uint32), a),
            ((2,), 2, (10, 3)), ((2,), 2, (10, 3))),
    "divisor dtype": (InputTypeError, "divisor must be a positive integer",
                      lambda k, a, b: jaxmpc.truncate_shares(k, a.shares, jnp.float64(2.0)),
                      ((2,), 2, (10, 3)), ((2,), 2, (10, 3))),
}


@settings(max_examples=12, deadline=None, derandomize=True)
@given(case=st.sampled_from(list(STRUCTURAL)), vmapped=st.booleans())
def test_structural_checks_under_jit_and_vmap(case, vmapped):
    exc, pattern, fn, a, b = STRUCTURAL[case]
    x, y = shared(*a), shared(*b)
    if vmapped:  # a batch of 2 runs over keys
        run = jax.jit(jax.vmap(fn, (0, None, None)))
        keys = jax.random.split(fresh_key(), 2)
    else:
        run, keys = jax.jit(fn), fresh_key()
    expect(exc, pattern, lambda: run(keys, x, y))


def test_concrete_values_are_checked_inside_jit():
    """A concrete (closed-over) value is still checked while tracing; a precision mismatch is
    caught when the encodings are built inside the jitted function."""
    def nan_share(key):
        return jaxmpc.share(key, np.array([1.0, np.nan]), fxp_of(10, 3)).shares

    expect(EncodingError, "NaN", lambda: jax.jit(nan_share)(fresh_key()))

    def mixed(key):
        k1, k2 = jax.random.split(key)
        return (jaxmpc.share(k1, np.ones(2), FixedPoint(10, 3))
                + jaxmpc.share(k2, np.ones(2), FixedPoint(10, 4))).shares

    expect(ShareMismatchError, "different precisions", lambda: jax.jit(mixed)(fresh_key()))


# ---- one-off cases: axes, iteration ranges, operators, reshape, cost and diagnostics arguments -------
def one_off_targets(key):
    """name: (error class, what the message must say, call). Each call raises before any work."""
    x, x0 = shared((2, 3)), shared(())
    x32 = jaxmpc.share(jax.random.key(5), np.ones((2, 3)), FixedPoint(2, 10), ring=32)
    u = jnp.zeros((2, 3), jnp.uint64)
    return {
        "softmax axis=5": (ShareMismatchError, r"axis must be in -2\.\.1 .* shape \(2, 3\)",
                           lambda: approx.softmax(key, x, axis=5)),
        "tree_max axis=-3": (ShareMismatchError, r"axis must be in -2\.\.1 .* shape \(2, 3\)",
                             lambda: approx.tree_max(key, x, axis=-3)),
        "softmax 0-d": (ShareMismatchError, r"an axis .* 0-d .*x\.reshape\(1\)",
                        lambda: approx.softmax(key, x0)),
        "exp iterations=62": (ProtocolError, r"iterations must be in 0\.\.61, got 62: .* below 2\^62",
                              lambda: approx.exp(key, x, iterations=62)),
        "softmax exp_iterations=62": (ProtocolError, r"exp_iterations must be in 0\.\.61",
                                      lambda: approx.softmax(key, x, exp_iterations=62)),
        "divide y not shared": (InputTypeError, r"divide: y must be a fixed-point",
                                lambda: approx.divide(key, x, 2.0)),
        "share ragged list": (InputTypeError, r"rectangular nested list, got a ragged .* Pad the rows",
                              lambda: jaxmpc.share(key, [[1.0, 2.0], [3.0]], fxp_of(10, 3))),
        "x / 2": (InputTypeError, r"jaxmpc\.div_public\(key, x, d\)", lambda: x / 2),
        "x // 2": (InputTypeError, r"jaxmpc\.div_public\(key, x, d\)", lambda: x // 2),
        "2 / x": (InputTypeError, r"jaxmpc\.reciprocal\(key, x\)", lambda: 2 / x),
        "x ** 2": (InputTypeError, r"jaxmpc\.mul\(key, x, x\)", lambda: x ** 2),
        "2 ** x": (InputTypeError, r"jaxmpc\.exp", lambda: 2 ** x),
        "reshape": (ShareMismatchError, r"shape \(2, 3\) \(6 elements\) cannot take shape \(5,\)",
                    lambda: x.reshape(5)),
        "sum axis": (ShareMismatchError, r"out of range .* -2\.\.1", lambda: x.sum(axis=2)),
        "msb mode": (ProtocolError, r"one of \('protocol', 'faithful', 'ideal'\), got 'fast'",
                     lambda: jaxmpc.msb(key, x, mode="fast")),
        "NetworkModel(0, 0)": (ProtocolError, r"bandwidth_bytes_per_s=\.\.\.\) must be a finite positive",
                               lambda: accounting.NetworkModel(0, 0)),
        "cost(3)": (InputTypeError, r"fn must be callable, got int. Pass the function first",
                    lambda: jaxmpc.cost(3)),
        "accounting.cost(None)": (InputTypeError, r"fn must be callable, got NoneType",
                                  lambda: accounting.cost(None, key)),
        "estimate('LAN')": (InputTypeError, r"must be a NetworkModel, got str: pass jaxmpc\.LAN",
                            lambda: jaxmpc.cost(lambda: 0).estimate("LAN")),
        "repeat(-1)": (ProtocolError, r"non-negative Python int .* got -1",
                       lambda: accounting.repeat(-1).__enter__()),
        "scan without length": (ProtocolError, r"pass length=",
                                lambda: jaxmpc.cost(lambda: accounting.scan(lambda c, _: (c, None), 0.0))),
        "gemm method": (ProtocolError, r"method must be None .* got 'f16'",
                        lambda: gemm.matmul(u, u.T, method="f16")),
        "gemm 0-d": (ShareMismatchError, r"at least 1-d, got shapes \(\)",
                     lambda: gemm.matmul(u[0, 0], u, method="f64")),
        "gemm inner": (ShareMismatchError, r"a's last axis must match b's second-to-last",
                       lambda: gemm.matmul(u, u, method="f64")),
        "gemm batch": (ShareMismatchError, r"batch axes .* do not broadcast",
                       lambda: gemm.matmul(jnp.zeros((2, 2, 3), jnp.uint64), jnp.zeros((3, 3, 2), jnp.uint64),
                                           method="f64")),
        "diagnostics.run(3)": (InputTypeError, r"fn must be callable, got int", lambda: diagnostics.run(3)),
        "register_float_twin": (InputTypeError, r"both must be callables, got int",
                                lambda: diagnostics.register_float_twin(1, abs)),
        "Report.window": (ProtocolError, r"per_step=True", lambda: diagnostics.Report({}).window(0, 1)),
        "tanh iterations=-1": (InputTypeError, r"tanh: iterations must be a Python int >= 0 .* got -1",
                               lambda: approx.tanh(key, x, iterations=-1)),
        "tanh exp_iterations=62": (ProtocolError, r"tanh: exp_iterations must be in 0\.\.61",
                                   lambda: approx.tanh(key, x, exp_iterations=62)),
        "domain argument": (InputTypeError, r"\['order'\] are not arguments of exp; its keyword arguments "
                            r"are \['iterations', 'method', 'truncation'\]", lambda: approx.domain("exp", order=2)),
        "domain iterations=2.5": (InputTypeError,
                                  r"iterations must be a Python int \(as exp takes it\), got 2\.5",
                                  lambda: approx.domain("exp", iterations=2.5)),
        "accuracy points=1": (InputTypeError, r"points must be a Python int >= 2, got 1",
                              lambda: accuracy.inputs("exp", 1)),
        "accuracy keys=0": (InputTypeError, r"keys must be a Python int >= 1, got 0",
                            lambda: accuracy.measure("exp", keys=0)),
        # rings: widths, headroom, mixing
        "ring=48": (ProtocolError, r"rings Z_2\^l with l in \(64, 32\), got ring=48",
                    lambda: jaxmpc.share(key, [1.0], fxp_of(2, 8), ring=48)),
        "ring=32 precision 16": (EncodingError, r"Z_2\^32: .* base 2 allows precision 0\.\.14 there",
                                 lambda: jaxmpc.share(key, [1.0], fxp_of(2, 16), ring=32)),
        "ring=32 magnitude": (EncodingError, r"magnitude 2000, too large .* below 2\^30, so \|x\| must be < 1024",
                              lambda: jaxmpc.share(key, [2000.0], fxp_of(2, 10), ring=32)),
        "config ring=32 precision 16": (EncodingError, r"base 2 allows precision 0\.\.14",
                                        lambda: jaxmpc.run.config.check(n_parties=2, base=2, precisions=[16],
                                                                        ring=32)),
        "mixing rings": (ShareMismatchError, r"different protocols .* Z_2\^64 and .* Z_2\^32",
                         lambda: x + x32),
        "div_public ring=32": (InputTypeError, r"below 2\^30 \(on Z_2\^32\), got 1073741824",
                               lambda: jaxmpc.div_public(key, x32, 2**30)),
        "truncate_shares ring=32": (ProtocolError, r"on Z_2\^32 the divisor must lie in \[1, 2\^30\)",
                                    lambda: jaxmpc.truncate_shares(key, x32.shares, 2**31)),
        "Shared ring mismatch": (ShareMismatchError, r"uint32 are words of Z_2\^32, but the protocol is over "
                                 r"Z_2\^64", lambda: Shared(x32.shares, None, x.protocol)),
    }


@pytest.mark.parametrize("name", list(one_off_targets(None)))
def test_one_off_cases(name):
    key = fresh_key()
    exc, pattern, fn = one_off_targets(key)[name]
    expect(exc, pattern, fn, key)


def test_unknown_approximation_names_are_key_errors():
    for call, name in ((approx.domain, "expo"), (approx.defaults, "tree_max"), (accuracy.measure, "cbrt")):
        with pytest.raises(UnknownNameError, match=rf"named '{name}'; expected one of .*'exp'") as info:
            call(name)
        assert isinstance(info.value, JaxMPCError) and isinstance(info.value, KeyError)


def test_a_broken_lanes_rule_raises_while_tracing(monkeypatch):
    """A rule of jaxmpc.lanes.vmap that gives the wrong per-run shape is caught at trace time, with
    the primitive, both shapes and the fix (jax.vmap) in the message; nothing is computed."""
    from jaxmpc import lanes

    def broken(prim, vals, params, n):
        out = rule(prim, vals, params, n)
        out.a = out.a[None]  # one axis too many
        return out

    rule = lanes.RULES["neg"]
    monkeypatch.setitem(lanes.RULES, "neg", broken)
    pattern = (r"rule for the primitive 'neg' gave a result of per-run shape \(1, 3\), expected \(3,\)"
               r".*jax\.vmap meanwhile")
    with pytest.raises(BatchingRuleError, match=pattern) as info:
        lanes.vmap(lambda v: -v)(jnp.ones((2, 3)))
    assert isinstance(info.value, JaxMPCError) and isinstance(info.value, RuntimeError)
    monkeypatch.undo()
    np.testing.assert_array_equal(lanes.vmap(lambda v: -v)(jnp.ones((2, 3))), -np.ones((2, 3)))


def test_unknown_report_name_is_a_key_error():
    pattern = r"no diagnostics for 'mul'; expected one of .*\['share'\]"
    with pytest.raises(UnknownNameError, match=pattern) as info:
        diagnostics.Report({"share": None})["mul"]
    assert isinstance(info.value, JaxMPCError) and isinstance(info.value, KeyError)
    assert str(info.value).startswith("no diagnostics")  # the message, not KeyError's repr of it


def test_msb_faithful_mode_is_the_protocol():
    """msb's documented claim: mode="faithful" computes the same shares as "protocol" (the modes differ
    only in Beaver's products, and msb has none): both trace to the same program (nothing compiles)."""
    x = shared((3,), 3)
    programs = {m: str(jax.make_jaxpr(lambda k: jaxmpc.msb(k, x, mode=m).shares)(fresh_key()))
                for m in ("protocol", "faithful")}
    assert programs["protocol"] == programs["faithful"]
