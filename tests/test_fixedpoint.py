r"""Fixed-point encoding: exact scales, rounding modes, decoding of negative values, precision as
array data (vmap), validation errors.

Bounds (units of 1/s): rounding "nearest" encodes within 0.5 unit; "trunc" within 1 unit, toward 0.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxmpc
from jaxmpc import FixedPoint
from jaxmpc.core import ring
from jaxmpc.core.fixedpoint import check_numeric, max_precision


def _raw(fxp, x):
    return np.asarray(ring.to_signed(fxp.encode(x)))


def test_max_precision():
    assert max_precision(10) == 9  # 10^18 < 2^62 < 10^20
    assert max_precision(2) == 30


@pytest.mark.parametrize("base,top", [(10, 9), (2, 30)])
def test_scales_exact_concrete_and_traced(base, top):
    """base**precision is exact in float64 and as a ring integer, concrete and under vmap + jit."""
    ps = np.arange(top + 1)
    want = np.array([float(base) ** p for p in ps])
    assert [float(FixedPoint(base, int(p)).scale) for p in ps] == want.tolist()
    assert [int(FixedPoint(base, int(p)).ring_scale) for p in ps] == [base ** int(p) for p in ps]
    scale, ring_scale, prec = jax.jit(jax.vmap(
        lambda p: (FixedPoint(base, p).scale, FixedPoint(base, p).ring_scale, FixedPoint(base, p).precision)
    ))(jnp.asarray(ps))
    np.testing.assert_array_equal(np.asarray(scale), want)
    assert np.asarray(ring_scale).tolist() == [base ** int(p) for p in ps]
    np.testing.assert_array_equal(np.asarray(prec), ps)


def test_pysyft_encodings():
    fxp = FixedPoint(10, 3, rounding="trunc")
    assert _raw(fxp, np.array([0.1, 0.2, 0.3])).tolist() == [100, 200, 300]
    assert int(_raw(fxp, 0.0738)) == 73 and int(_raw(fxp, -0.2109)) == -210  # toward zero
    assert int(_raw(FixedPoint(10, 3), 0.0738)) == 74 and int(_raw(FixedPoint(10, 3), -0.2109)) == -211
    assert int(_raw(FixedPoint(2, 16), 1.5)) == 3 << 15
    assert float(FixedPoint(10, 3).decode(FixedPoint(10, 3).encode(-1.5))) == -1.5


@settings(max_examples=30, deadline=None)
@given(x=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=8, max_size=8),
       precision=st.integers(0, 6))
def test_round_trip_bounds(x, precision):
    """nearest: |dec(enc(x)) - x| <= 0.5 unit; trunc: < 1 unit and |dec| <= |x| (toward zero)."""
    x = np.array(x)
    s = 10.0**precision
    near = np.asarray(FixedPoint(10, precision).decode(FixedPoint(10, precision).encode(x)))
    assert near.dtype == np.float64
    assert np.all(np.abs(near - x) * s <= 0.5 + 1e-6)
    tr = FixedPoint(10, precision, rounding="trunc")
    t = np.asarray(tr.decode(tr.encode(x)))
    assert np.all(np.abs(t - x) * s < 1 + 1e-6)
    assert np.all(np.abs(t) <= np.abs(x) * (1 + 1e-15))


@pytest.mark.parametrize("base,precision", [(10, p) for p in range(2, 7)] + [(2, 16)])
def test_negative_just_below_integer(base, precision):
    """-k + 1/s (e.g. -1.99999 at precision 5) decodes to itself, never 1.0 too low (CrypTen 0.4.1
    decoded -1.99999 as -2.99998); also just above -k and the nearest-rounding neighbours.

    "Itself" up to float64 rounding (rtol 1e-15): XLA rewrites the division by the scale into a
    multiplication by its reciprocal, so decode can be 1 ulp from the correctly rounded quotient."""
    fxp = FixedPoint(base, precision)
    s = float(base) ** precision
    k = np.arange(1, 6, dtype=np.float64)
    for x in (-k + 1 / s, -k - 1 / s, -k + 0.4 / s, -k + 0.6 / s, -k + 3 / s, k - 1 / s):
        got = np.asarray(fxp.decode(fxp.encode(x)))
        np.testing.assert_allclose(got, np.round(x * s) / s, rtol=1e-15, atol=0)
        assert np.all(np.abs(got - x) * s <= 0.5 + 1e-6)
    if base == 10 and precision == 5:
        assert abs(float(fxp.decode(fxp.encode(-1.99999))) + 1.99999) < 1e-15


def test_negative_just_below_integer_vmapped_precision():
    x = np.array([-1.99, -2.999, -0.9999, -3.99999, -4.999999])
    dec = jax.jit(jax.vmap(lambda p: FixedPoint(10, p).decode(FixedPoint(10, p).encode(x))))(jnp.arange(2, 7))
    for i, p in enumerate(range(2, 7)):
        s = 10.0**p
        np.testing.assert_allclose(np.asarray(dec[i]), np.round(x * s) / s, rtol=1e-15, atol=0)


def test_precision_as_array_data():
    """Concrete numpy / jax integer precisions stay concrete; traced ones give '<traced>'."""
    assert FixedPoint(10, np.int32(4)).concrete_precision() == 4
    assert FixedPoint(10, jnp.int32(4)).concrete_precision() == 4
    assert repr(FixedPoint(2, 16)) == "FixedPoint(base=2, precision=16)"
    assert "trunc" in repr(FixedPoint(10, 3, rounding="trunc"))
    reprs = []
    jax.vmap(lambda p: reprs.append(repr(FixedPoint(10, p))) or p)(jnp.arange(3))
    assert reprs == ["FixedPoint(base=10, precision=<traced>)"]


def test_fixedpoint_is_a_pytree_with_static_base():
    fxp = FixedPoint(2, 16, rounding="trunc")
    leaves, treedef = jax.tree_util.tree_flatten(fxp)
    assert len(leaves) == 1 and leaves[0].dtype == bool
    back = jax.tree_util.tree_unflatten(treedef, leaves)
    assert (back.base, back.rounding, back.concrete_precision()) == (2, "trunc", 16)
    # a jitted function taking a FixedPoint argument sees its precision as data
    f = jax.jit(lambda fx, x: fx.encode(x))
    assert int(ring.to_signed(f(FixedPoint(10, 2), 1.234))) == 123
    assert int(ring.to_signed(f(FixedPoint(10, 4), 1.234))) == 12340


def test_optax_apply_updates_keeps_the_encoding():
    """apply_updates adds leaf by leaf; the precision bits add as logical OR, so the encoding of a
    shared parameter survives (the sum of two shares of precision 3 is still precision 3)."""
    fxp = FixedPoint(10, 3)
    k1, k2 = jax.random.split(jax.random.key(0))
    params = {"w": jaxmpc.share(k1, np.array([1.0, -2.0, 0.5]), fxp)}
    updates = {"w": jaxmpc.share(k2, np.array([0.25, 0.125, -1.5]), fxp)}
    new = optax.apply_updates(params, updates)
    assert new["w"].fxp.concrete_precision() == 3 and new["w"].fxp.base == 10
    np.testing.assert_allclose(np.asarray(jaxmpc.reveal(new["w"])), [1.25, -1.875, -1.0], atol=1e-3)


@pytest.mark.parametrize("base", [3, 16, True, 10.0, "10", None])
def test_bad_base(base):
    with pytest.raises(jaxmpc.InputTypeError, match="base"):
        FixedPoint(base, 3)


@pytest.mark.parametrize("base,precision", [(10, 10), (10, -1), (2, 31), (2, 64), (10, 100)])
def test_precision_out_of_range(base, precision):
    with pytest.raises(jaxmpc.EncodingError, match=r"precision 0\.\.(9|30)"):
        FixedPoint(base, precision)


@pytest.mark.parametrize("precision", [2.5, True, np.array([1, 2]), "3", jnp.float32(3)])
def test_precision_wrong_type(precision):
    with pytest.raises(jaxmpc.InputTypeError, match="precision"):
        FixedPoint(10, precision)


def test_traced_precision_must_be_integer_scalar():
    with pytest.raises(jaxmpc.InputTypeError, match="scalar integer"):
        jax.vmap(lambda p: FixedPoint(10, p).scale)(jnp.arange(3.0))


def test_bad_rounding():
    with pytest.raises(jaxmpc.InputTypeError, match="rounding"):
        FixedPoint(10, 3, rounding="floor")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_check_values_nonfinite(value):
    with pytest.raises(jaxmpc.EncodingError, match="NaN or infinite"):
        FixedPoint(10, 3).check_values(np.array([1.0, value]), "w")


def test_check_values_too_large():
    """|x| s^2 must stay below 2^62 (room for one product); the message names the argument."""
    fxp = FixedPoint(10, 3)
    limit = 2.0**62 / 1e6
    fxp.check_values(np.array([limit * 0.999, -limit * 0.999]))  # fine
    with pytest.raises(jaxmpc.EncodingError, match=r"weights has magnitude .* lower the precision"):
        fxp.check_values(np.array([0.0, -limit * 1.001]), "weights")
    with pytest.raises(jaxmpc.EncodingError):
        FixedPoint(2, 30).check_values(np.array([4.0]))  # 4 * 2^60 = 2^62
    FixedPoint(2, 30).check_values(np.array([3.99]))
    FixedPoint(10, 3).check_values(np.zeros((0,)))  # empty is fine


@pytest.mark.parametrize("bad", [np.array([True, False]), np.array(["a", "b"]), "text", {1, 2},
                                 np.array([1 + 2j])])
def test_check_numeric_rejects(bad):
    with pytest.raises(jaxmpc.InputTypeError):
        check_numeric(bad, "x")


def test_check_numeric_accepts():
    for ok in (np.array([1, 2]), np.float32(1.5), 3, [1.0, 2.0], jnp.ones(2, jnp.bfloat16)):
        check_numeric(ok, "x")


def test_traced_out_of_range_precision_decodes_to_nan():
    """Under vmap / jit a precision cannot raise; it is held exactly (no 8-bit wrap: 256 is not 0,
    259 is not 3), flagged invalid, and its run decodes to NaN while the valid runs stay exact."""
    ps = jnp.array([4, 10, 256, 259, -1, 9])
    x = np.array([1.5, -2.25])

    @jax.jit
    @jax.vmap
    def f(p):
        fxp = FixedPoint(10, p)
        return fxp.precision, fxp.valid, fxp.scale, fxp.ring_scale, fxp.decode(fxp.encode(x))

    prec, valid, scale, ring_scale, dec = jax.tree_util.tree_map(np.asarray, f(ps))
    assert prec.tolist() == [4, 10, 256, 259, -1, 9]
    assert valid.tolist() == [True, False, False, False, False, True]
    assert np.isnan(scale[~valid]).all() and scale[valid].tolist() == [1e4, 1e9]
    assert ring_scale.tolist() == [10**4, 1, 1, 1, 1, 10**9]  # ring arithmetic never sees NaN
    assert np.isnan(dec[~valid]).all()
    np.testing.assert_array_equal(dec[valid], np.stack([x, x]))
    # one compile serves every precision (the swept path stays data)
    g = jax.jit(lambda p: FixedPoint(2, p).decode(FixedPoint(2, p).encode(x)))
    assert np.isnan(np.asarray(g(31))).all() and np.asarray(g(30)).tolist() == x.tolist()
    assert g._cache_size() == 1


def test_ring_32_headroom_and_encoding():
    """On Z_2^32 the encoding is uint32 words with headroom s^2 < 2^30 (base 2: 0..14, base 10:
    0..4); a traced precision beyond it decodes to NaN and is counted under "precision range"."""
    assert (max_precision(2, 32), max_precision(10, 32)) == (14, 4)
    f32 = FixedPoint(2, 12).on_ring(32)
    assert f32.dtype == jnp.uint32 and f32.ring_scale.dtype == jnp.uint32 and int(f32.ring_scale) == 4096
    v = f32.encode(np.array([1.5, -2.25]))
    assert v.dtype == jnp.uint32 and v.tolist() == [6144, 2**32 - 9216]
    np.testing.assert_array_equal(f32.decode(v), [1.5, -2.25])
    assert f32.same_static(FixedPoint(2, 12).on_ring(32)) and not f32.same_static(FixedPoint(2, 12))
    key = jax.random.key(0)

    def f(p):
        return jaxmpc.reveal(jaxmpc.share(key, np.array([0.75]), FixedPoint(2, p), ring=32))

    out, report = jax.jit(jax.vmap(jaxmpc.diagnostics.run(f)))(jnp.array([12, 14, 15, 20]))
    out = np.asarray(out)[:, 0]
    assert out[:2].tolist() == [0.75, 0.75] and np.isnan(out[2:]).all()
    assert np.asarray(report.calls["precision range"].failures).tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("dtype,value", [(jnp.uint64, 2**64 - 1), (jnp.int64, 2**40), (jnp.uint8, 255),
                                         (jnp.int8, -128)])
def test_traced_precision_of_any_integer_dtype_never_wraps(dtype, value):
    prec, valid = jax.jit(lambda p: (FixedPoint(2, p).precision, FixedPoint(2, p).valid))(
        jnp.asarray(value, dtype))
    assert not bool(valid)
    want = min(value, 2**63 - 1)  # an unsigned value above int64 clamps (still out of range)
    assert int(prec) == want


def test_batched_encoding_needs_jaxmpc_vmap():
    """A FixedPoint whose precision bits were mapped by jax.vmap (a batch in front, or bits vmapped
    away) raises a ShareMismatchError naming the fix; decode takes a batch of precisions in front."""
    fxps = jax.vmap(lambda p: FixedPoint(10, p))(jnp.array([1, 2]))
    with pytest.raises(jaxmpc.ShareMismatchError, match="jaxmpc.vmap"):
        fxps.encode(1.0)
    with pytest.raises(jaxmpc.ShareMismatchError, match="jaxmpc.vmap"):
        fxps.ring_scale
    v = jnp.asarray([[150, 15], [150, 15]], jnp.uint64)
    np.testing.assert_array_equal(np.asarray(fxps.decode(v)), [[15.0, 1.5], [1.5, 0.15]])
    with pytest.raises(jaxmpc.ShareMismatchError, match="leading axes"):
        fxps.decode(v[:1])
    with pytest.raises(jaxmpc.ShareMismatchError, match="jaxmpc.vmap"):
        jax.vmap(lambda f: f.decode(jnp.uint64(1)))(FixedPoint(10, 3))  # the 64 bits mapped away
