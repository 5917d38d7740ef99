"""Exact ring matmul on fast GEMMs (jaxmpc.core.gemm): bit-exact against XLA's uint64 matmul.

Every method is compared with ``jnp.matmul(a, b, preferred_element_type=uint64)`` on random
values, edge values (0, 1, 2^32 - 1, 2^63, 2^64 - 1, the worst-case digits of each split) and
inner dimensions that cross the exactness chunks; jnp.matmul's shape rules (1-d, batched,
broadcast, empty) are checked on the default fast method. Compiles are the cost here, so each
case is one jitted call.
"""
import dataclasses
import functools
import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jaxmpc.core import gemm, ring
from jaxmpc import errors as jaxmpc_errors

U64 = jnp.uint64
FAST = tuple(m for m in gemm.methods() if m != "xla")  # the exact methods here, but the reference
MAX = 2**64 - 1


def extreme(method, kind="worst"):
    """A ring element with extreme balanced digits for ``method``'s split. ``"worst"``: every digit
    -2^(w-1) (the largest terms, all powers of two); ``"mixed"``: alternately -2^(w-1) and
    -2^(w-1) + 1, so the large terms are odd and a sum past the exact range must round."""
    s = gemm.SCHEMES[method]
    digits = [-(1 << (w - 1)) + (kind == "mixed") * (i % 2) for i, w in enumerate(s.widths)]
    return sum(d << o for d, o in zip(digits, s.offsets)) % 2**64


EDGES = [0, 1, 2, 2**21, 2**22 - 1, 2**32 - 1, 2**32, 2**43 + 1, 2**63 - 1, 2**63, 2**63 + 1,
         MAX - 1, MAX] + [extreme(m, kind) for m in FAST for kind in ("worst", "mixed")]


@functools.partial(jax.jit, static_argnames="method")
def mm(a, b, method):
    return gemm.matmul(a, b, method=method)


@jax.jit
def reference(a, b):
    return jnp.matmul(a, b, preferred_element_type=U64)


def rand(rng, shape, edges=False):
    if edges:
        return jnp.asarray(rng.choice(np.array(EDGES, np.uint64), size=shape))
    return jnp.asarray(rng.integers(0, 2**64, size=shape, dtype=np.uint64))


def check(a, b, method):
    got, want = mm(a, b, method), reference(a, b)
    assert got.dtype == want.dtype == U64
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


# --- the splits themselves (pure Python, no compiles) ---------------------------------------------

@pytest.mark.parametrize("bits", [64, 32])
@pytest.mark.parametrize("method", FAST)
def test_scheme_is_exact_by_construction(method, bits):
    s = gemm.scheme(method, bits)
    mod = 2**bits
    assert sum(s.widths) == bits
    bound = max(s.digit_bound(l) * s.digit_bound(r) for l, r, _ in s.products)
    assert s.max_chunk * bound <= s.exact  # every partial sum of a chunk is exact
    if jnp.issubdtype(s.dtype, jnp.integer):  # the digit combinations fit the GEMM dtype
        assert all(s.digit_bound(c) <= -int(jnp.iinfo(s.dtype).min) for p in s.products for c in p[:2])
    # sum_p weight_p L_p R_p == sum_{o_i + o_j < 64} 2^(o_i + o_j) a_i b_j (mod 2^bits) as polynomials:
    # check on random integer digits (an identity in the digits, so a few draws suffice).
    r = random.Random(method)
    for _ in range(20):
        da = [r.randrange(-2**(w - 1), 2**(w - 1)) for w in s.widths]
        db = [r.randrange(-2**(w - 1), 2**(w - 1)) for w in s.widths]
        got = sum(w * sum(c * da[i] for i, c in l) * sum(c * db[j] for j, c in rr)
                  for l, rr, w in s.products)
        a = sum(d << o for d, o in zip(da, s.offsets)) % mod
        b = sum(d << o for d, o in zip(db, s.offsets)) % mod
        assert got % mod == a * b % mod


def test_f64_chunk_is_910():
    assert gemm.SCHEMES["f64"].max_chunk == 910 and gemm.SCHEMES["f32"].max_chunk == 1024


# --- every method: random, edge and worst-case values, chunk crossings -----------------------------

@pytest.mark.parametrize("method", gemm.methods())
def test_random_and_edge_values(method):
    rng = np.random.default_rng(0)
    check(rand(rng, (5, 7)), rand(rng, (7, 3)), method)
    check(rand(rng, (6, 40), edges=True), rand(rng, (40, 9), edges=True), method)


@pytest.mark.parametrize("method", FAST)
def test_long_inner_dimension_crosses_chunks(method):
    """k = 3000 is 4 chunks of f64 (910) and 3 of f32 (1024); edge values stress every digit."""
    rng = np.random.default_rng(1)
    check(rand(rng, (1, 3000)), rand(rng, (3000, 2)), method)
    check(rand(rng, (3, 3000), edges=True), rand(rng, (3000, 2), edges=True), method)


@pytest.mark.parametrize("method", FAST)
@pytest.mark.parametrize("value", [MAX, 2**63, "worst", "mixed"])
def test_constant_matrices(method, value):
    """All-max (and other constant) matrices: every term is the same extreme digit product. With
    the "mixed" digits and k = 3001, doubling the f64 or f32 chunk bound gives wrong bits."""
    v = value if isinstance(value, int) else extreme(method, value)
    a = jnp.full((2, 3001), v, U64)
    check(a, a.T, method)


def test_chunking_of_int8_path():
    """i8 never chunks at real sizes (131071 terms); force small chunks to test its chunk path."""
    s = gemm.SCHEMES["i8"]
    small = dataclasses.replace(s, exact=100 * (1 << 14))  # 100 terms per chunk
    rng = np.random.default_rng(2)
    a, b = rand(rng, (3, 250), edges=True), rand(rng, (250, 4))
    got = jax.jit(lambda a, b: gemm._limb_matmul(a, b, small, 0))(a, b)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(reference(a, b)))


# --- jnp.matmul shape rules -------------------------------------------------------------------------

SHAPES = [
    ((7,), (7,)), ((7,), (7, 3)), ((4, 7), (7,)), ((2, 3, 7), (7,)), ((7,), (2, 7, 3)),
    ((3, 4, 5), (5, 6)), ((4, 5), (2, 5, 3)), ((2, 1, 4, 5), (3, 5, 2)), ((1, 4, 5), (1, 1, 5, 3)),
    ((0, 3), (3, 2)), ((2, 0), (0, 3)), ((3, 0), (0,)), ((0, 2, 3), (3, 4)), ((2, 3), (0, 3, 4)),
]


@pytest.mark.parametrize("sa,sb", SHAPES)
def test_shapes_like_jnp_matmul(sa, sb):
    rng = np.random.default_rng(3)
    check(rand(rng, sa, edges=True), rand(rng, sb), "f64")


def test_vmap_over_one_operand_under_jit():
    """Beaver's use: jax.vmap(op, (None, 0))(e, b) with b batched over parties."""
    rng = np.random.default_rng(4)
    e, b = rand(rng, (16, 70)), rand(rng, (3, 70, 65))
    got = jax.jit(jax.vmap(lambda x, y: gemm.matmul(x, y, method="f64"), (None, 0)))(e, b)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(reference(e[None], b)))


# --- automatic choice and errors --------------------------------------------------------------------

def test_choose_method():
    assert gemm.choose_method(128, 128, 128, backend="cpu") == "f64"
    assert gemm.choose_method(16, 64, 512, backend="cpu") == "f64"
    assert gemm.choose_method(64, 64, 64, backend="cpu") == "xla"  # too small to pay off
    assert gemm.choose_method(1024, 1024, 1, backend="cpu") == "xla"  # matrix-vector
    assert gemm.choose_method(1024, 32, 1024, backend="cpu") == "xla"  # short inner dimension
    assert gemm.choose_method(8, 8, 8, backend="gpu") == "f64"
    assert gemm.choose_method(512, 512, 512, backend="tpu") == "xla"


def test_ring_matmul_dispatches_and_is_exact():
    rng = np.random.default_rng(5)
    a, b = rand(rng, (2, 16, 64), edges=True), rand(rng, (64, 512))  # auto: f64 on CPU
    got = jax.jit(gemm.matmul)(a, b)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(reference(a, b)))
    x = rand(rng, (3, 4))
    got = jax.jit(functools.partial(gemm.matmul, method="f32"))(x, x.T)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(reference(x, x.T)))


def test_int8_method_is_refused_on_gpus(monkeypatch):
    """XLA's GPU int8 GEMM was measured to return twice the product for some shapes: no "i8" there."""
    assert gemm.methods("cpu") == gemm.METHODS
    assert gemm.methods("gpu") == gemm.methods("cuda") == ("xla", "f64", "f32")
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    x = jnp.zeros((2, 3), U64)
    with pytest.raises(ValueError, match=r"not exact on the 'gpu' backend.*method=None"):
        gemm.matmul(x, x.T, method="i8")
    assert gemm.matmul(x, x.T, method="f32").shape == (2, 2)


def test_bad_input():
    x = jnp.zeros((2, 3), U64)
    with pytest.raises(ValueError, match="method"):
        gemm.matmul(x, x.T, method="f16")
    with pytest.raises(TypeError, match="uint64"):
        gemm.matmul(x, jnp.zeros((3, 2), jnp.int64), method="f64")
    with pytest.raises(ValueError, match="inner"):
        gemm.matmul(x, x, method="f64")


# --- property test ----------------------------------------------------------------------------------

ring_values = st.one_of(st.sampled_from(EDGES), st.integers(0, MAX))


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(FAST), st.integers(0, 3), st.integers(0, 5), st.integers(0, 3),
       st.integers(0, 2**32 - 1), st.data())
def test_property_bit_exact(method, m, k, n, seed, data):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**64, size=(m, k), dtype=np.uint64)
    b = rng.integers(0, 2**64, size=(k, n), dtype=np.uint64)
    if a.size:  # a few drawn (often extreme) entries
        a.flat[data.draw(st.integers(0, a.size - 1))] = data.draw(ring_values)
    if b.size:
        b.flat[data.draw(st.integers(0, b.size - 1))] = data.draw(ring_values)
    check(jnp.asarray(a), jnp.asarray(b), method)


@pytest.mark.parametrize("scale", [1.0, 2.0**20, 2.0**40, 2.0**62])
@pytest.mark.parametrize("m, k, n", [(9, 700, 5), (16, 16, 16)])
def test_matmul_small_is_bit_exact_on_both_branches(scale, m, k, n):
    """Small signed values take one float64 GEMM, large ones the limb path: identical bits. Tiny
    products (16^3 multiply-adds) take XLA's integer loop alone, with no branch."""
    rng = np.random.default_rng(int(np.log2(scale)))
    a = ring.from_signed(jnp.asarray(np.clip(rng.standard_normal((m, k)) * scale, -2.0**62, 2.0**62)).astype(jnp.int64))
    b = ring.from_signed(jnp.asarray(np.clip(rng.standard_normal((k, n)) * scale, -2.0**62, 2.0**62)).astype(jnp.int64))
    branches = m * k * n > gemm.TINY_MACS
    assert ("cond" in str(jax.make_jaxpr(gemm.matmul_small)(a, b))) == branches
    want = jnp.matmul(a, b, preferred_element_type=jnp.uint64)
    np.testing.assert_array_equal(np.asarray(jax.jit(gemm.matmul_small)(a, b)), np.asarray(want))
    batched = jax.vmap(gemm.matmul_small)(jnp.stack([a, a]), jnp.stack([b, b]))
    np.testing.assert_array_equal(np.asarray(batched[1]), np.asarray(want))


# --- Z_2^32: uint32 words (two 16-bit digits on f64, four 8-bit on i8 / f32) ----------------------

U32 = jnp.uint32


def extreme32(method, kind="worst"):
    s = gemm.scheme(method, 32)
    digits = [-(1 << (w - 1)) + (kind == "mixed") * (i % 2) for i, w in enumerate(s.widths)]
    return sum(d << o for d, o in zip(digits, s.offsets)) % 2**32


EDGES32 = [0, 1, 2**15 - 1, 2**15, 2**16 - 1, 2**16, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 2, 2**32 - 1] + [
    extreme32(m, kind) for m in FAST for kind in ("worst", "mixed")]


@pytest.mark.parametrize("method", FAST)
def test_uint32_is_bit_exact_on_random_edge_and_constant_values(method):
    """Against XLA's uint32 matmul: random words, edge words, and all-extreme matrices long enough
    to cross the f32 chunk (1024); the f64 chunk (2^23 terms) is forced small to test its path."""
    rng = np.random.default_rng(3)
    ref = jax.jit(lambda a, b: jnp.matmul(a, b, preferred_element_type=U32))
    cases = [(rng.integers(0, 2**32, size=(5, 7), dtype=np.uint64), rng.integers(0, 2**32, size=(7, 3), dtype=np.uint64)),
             (rng.choice(np.array(EDGES32, np.uint64), size=(6, 2100)),
              rng.choice(np.array(EDGES32, np.uint64), size=(2100, 3)))]
    v = extreme32(method, "mixed")
    cases.append((np.full((2, 2100), v, np.uint64), np.full((2100, 2), v, np.uint64)))
    s = gemm.scheme(method, 32)
    small = dataclasses.replace(s, exact=300 * max(s.digit_bound(l) * s.digit_bound(r) for l, r, _ in s.products))
    for a, b in cases:
        a, b = jnp.asarray(a.astype(np.uint32)), jnp.asarray(b.astype(np.uint32))
        want = np.asarray(ref(a, b))
        got = mm(a, b, method)
        assert got.dtype == U32
        np.testing.assert_array_equal(np.asarray(got), want)
        np.testing.assert_array_equal(np.asarray(gemm._limb_matmul(a, b, small, 0)), want)
    mixed = jnp.asarray(rng.integers(0, 2**32, size=(3, 4), dtype=np.uint64).astype(np.uint32))
    with pytest.raises(jaxmpc_errors.InputTypeError, match="one ring"):
        gemm.matmul(mixed, jnp.ones((4, 2), U64), method=method)
