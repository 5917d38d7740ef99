"""The ring Z_2^64 on uint64: signed view, constants, sums over the party axis, sharing, products.

Oracles are Python integers reduced modulo 2^64 (exact, independent of JAX and numpy overflow).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxmpc
from jaxmpc.core import gemm, keys, ring

M = 1 << 64
int64s = st.integers(-(1 << 63), (1 << 63) - 1)
uint64s = st.integers(0, M - 1)


def _u64(values) -> jax.Array:
    return jnp.asarray(np.array(values, dtype=np.uint64))


def _py(v) -> list:
    """A uint64 / int64 array as a nested list of Python ints."""
    return np.asarray(v).tolist()


@settings(max_examples=30, deadline=None)
@given(st.lists(int64s, min_size=8, max_size=8))
def test_signed_round_trip(values):
    s = jnp.asarray(np.array(values, np.int64))
    u = ring.from_signed(s)
    assert u.dtype == jnp.uint64
    assert _py(u) == [v % M for v in values]
    assert _py(ring.to_signed(u)) == values


@settings(max_examples=30, deadline=None)
@given(st.lists(uint64s, min_size=8, max_size=8))
def test_unsigned_round_trip(values):
    u = _u64(values)
    s = ring.to_signed(u)
    assert s.dtype == jnp.int64
    assert _py(s) == [v - M if v >= 1 << 63 else v for v in values]
    assert _py(ring.from_signed(s)) == values


def test_signed_view_edges():
    assert int(ring.from_signed(jnp.int64(-1))) == M - 1
    assert int(ring.to_signed(jnp.uint64(1 << 63))) == -(1 << 63)
    assert int(ring.to_signed(jnp.uint64((1 << 63) - 1))) == (1 << 63) - 1
    assert ring.to_signed(jnp.zeros((0, 3), jnp.uint64)).shape == (0, 3)


def test_const():
    assert int(ring.const(-5)) == M - 5
    assert ring.const(-5).dtype == jnp.uint64
    assert int(ring.const(np.int32(-2))) == M - 2
    u = jnp.uint64(M - 1)
    assert int(ring.const(u)) == M - 1 and ring.const(u).dtype == jnp.uint64
    assert _py(ring.const(np.array([1, -1, 7], np.int16))) == [1, M - 1, 7]


@settings(max_examples=25, deadline=None)
@given(n=st.sampled_from([2, 3, 5]), a=st.lists(uint64s, min_size=20, max_size=20),
       b=st.lists(uint64s, min_size=20, max_size=20), c=uint64s)
def test_party_sum_linear(n, a, b, c):
    """party_sum is the ring sum over the party axis, and it is linear: sum(a + b) = sum(a) + sum(b),
    sum(c a) = c sum(a) (mod 2^64). Four elements per party."""
    a, b = a[:4 * n], b[:4 * n]
    A, B = _u64(a).reshape(n, 4), _u64(b).reshape(n, 4)
    want_a = [sum(a[i * 4 + j] for i in range(n)) % M for j in range(4)]
    assert ring.party_sum(A).dtype == jnp.uint64
    assert _py(ring.party_sum(A)) == want_a
    assert _py(ring.party_sum(A + B)) == _py(ring.party_sum(A) + ring.party_sum(B))
    cu = jnp.uint64(c)
    assert _py(ring.party_sum(cu * A)) == [(c * w) % M for w in want_a]


@settings(max_examples=20, deadline=None)
@given(n=st.sampled_from([2, 3, 5]), seed=st.integers(0, 2**31 - 1), v=st.lists(int64s, min_size=6, max_size=6))
def test_share_value_sums_to_value(n, seed, v):
    val = ring.from_signed(jnp.asarray(np.array(v, np.int64)).reshape(2, 3))
    shares = ring.share_value(jax.random.key(seed), val, n)
    assert shares.shape == (n, 2, 3) and shares.dtype == jnp.uint64
    assert _py(ring.party_sum(shares)) == _py(val)
    assert _py(ring.to_signed(ring.party_sum(shares))) == np.array(v).reshape(2, 3).tolist()


@settings(max_examples=20, deadline=None)
@given(n=st.sampled_from([2, 3, 5]), seed=st.integers(0, 2**31 - 1), v=st.lists(uint64s, min_size=4, max_size=4))
def test_xor_sharing(n, seed, v):
    val = _u64(v)
    shares = ring.xor_share_value(jax.random.key(seed), val, n)
    assert shares.shape == (n, 4)
    assert _py(ring.party_xor(shares)) == v
    want = [0] * 4
    for row in _py(shares):
        want = [w ^ r for w, r in zip(want, row)]
    assert want == v


def test_share_value_edge_shapes():
    k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
    assert ring.share_value(k1, jnp.uint64(5), 3).shape == (3,)
    assert int(ring.party_sum(ring.share_value(k2, jnp.uint64(5), 3))) == 5
    assert ring.share_value(k3, jnp.zeros((2, 0), jnp.uint64), 2).shape == (2, 2, 0)


def test_draw_shapes_and_independence():
    a, b, c = ring.draw(jax.random.key(4), 3, (3, (2, 3)), (2, (0,)), (ring.DEALER, (5,)))
    assert (a.shape, b.shape, c.shape) == ((3, 2, 3), (2, 0), (5,))
    assert a.dtype == b.dtype == c.dtype == jnp.uint64
    assert len(set(_py(a.ravel()) + _py(c))) == 23  # 23 distinct 64-bit draws


@pytest.mark.parametrize("total", [ring.SMALL_DRAW, ring.SMALL_DRAW + 1])
def test_draw_gives_each_party_its_own_stream(total):
    """Both sides of the size threshold (stored once / left to fusion, under jit): row i of every
    spec is the next slice of the words of child i of split(key, n + 1), the dealer's arrays those
    of child n, so a party's words come from its own key alone."""
    n, key = 3, jaxmpc.key(12)
    children = jax.random.split(jax.random.clone(key), n + 1)
    big = total // 4 - 5  # rows of 3x5 and `big` words for parties 0..2, `big` more for the dealer
    a, b, r = jax.jit(lambda k: ring.draw(k, n, (n, (3, 5)), (n - 1, (big,)), (ring.DEALER, (big,))))(key)
    for i in range(n):
        stream = np.asarray(ring.random(children[i], (15 + (big if i < n - 1 else 0),)))
        np.testing.assert_array_equal(np.asarray(a[i]).ravel(), stream[:15])
        if i < n - 1:
            np.testing.assert_array_equal(np.asarray(b[i]), stream[15:])
    np.testing.assert_array_equal(np.asarray(r), np.asarray(ring.random(children[n], (big,))))


def test_add_to_party0_only_changes_party_0():
    shares = ring.share_value(jax.random.key(5), _u64([1, 2, 3]), 3)
    out = ring.add_to_party0(shares, _u64([10, 20, 30]))
    np.testing.assert_array_equal(out[1:], shares[1:])
    assert _py(ring.party_sum(out)) == [11, 22, 33]


def _matmul_oracle(a, b):
    """Exact mod-2^64 matmul on Python ints (numpy object arrays), jnp.matmul shape rules."""
    a_o, b_o = np.asarray(a).astype(object), np.asarray(b).astype(object)
    return np.vectorize(lambda v: v % M, otypes=[object])(np.matmul(a_o, b_o))


@pytest.mark.parametrize("shape_a,shape_b", [((3, 5), (5, 2)), ((2, 3, 4), (4, 2)), ((4,), (4, 3)),
                                             ((3, 4), (4,)), ((6,), (6,)), ((2, 2, 3), (2, 3, 2)),
                                             ((2, 0), (0, 3)), ((4, 1000), (1000, 3))])
def test_ring_matmul_exact_mod_2_64(shape_a, shape_b):
    """Full-range uint64 entries: every bit of the product modulo 2^64 (including a long inner
    dimension, where limb-based GEMMs must split the sum to stay exact)."""
    rng = np.random.default_rng(sum(shape_a) * 31 + sum(shape_b))
    a = rng.integers(0, M, size=shape_a, dtype=np.uint64)
    b = rng.integers(0, M, size=shape_b, dtype=np.uint64)
    got = gemm.matmul(jnp.asarray(a), jnp.asarray(b))
    assert got.dtype == jnp.uint64
    want = _matmul_oracle(a, b)
    assert got.shape == want.shape
    assert np.asarray(got).astype(object).tolist() == want.tolist()


def _mix64(z: int) -> int:
    """The SplitMix64 finaliser (Steele, Lea & Flood 2014) in Python integers."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % M
    return z ^ (z >> 31)


def test_splitmix64_keys_match_the_reference_stream():
    """jaxmpc.key's draws are the SplitMix64 stream mix(s + (i+1) gamma) of the key's 64-bit seed
    s; its splits and folds are Threefry-2x32 of (counter, tag) under the key, checked against
    JAX's own threefry2x32 primitive; eagerly and under jit (split keys are stored once for XLA:
    no bit may change)."""
    from jax.extend.random import threefry2x32_p
    gamma = 0x9E3779B97F4A7C15

    def seed_of(data):
        hi, lo = (int(w) for w in np.asarray(data))
        return (hi << 32) | lo

    def stream(seed, count):
        return [_mix64((seed + (i + 1) * gamma) % M) for i in range(count)]

    def threefry(data, x0, tag):
        k0, k1 = (jnp.full(np.shape(x0), w, jnp.uint32) for w in np.asarray(data))
        y0, y1 = jax.jit(threefry2x32_p.bind)(k0, k1, jnp.asarray(x0, jnp.uint32),
                                              jnp.full(np.shape(x0), tag, jnp.uint32))
        return np.stack([y0, y1], axis=-1).tolist()

    data = jax.random.key_data(jaxmpc.key(7))  # the same key again for each use below
    for bits in (jax.random.bits(jaxmpc.key(7), (5,), jnp.uint64),
                 jax.jit(lambda k: jax.random.bits(k, (5,), jnp.uint64))(jaxmpc.key(7))):
        assert _py(bits) == stream(seed_of(data), 5)
    want = threefry(data, np.arange(3), keys._TAG_SPLIT)
    for children in (jax.random.split(jaxmpc.key(7), 3),
                     jax.jit(lambda k: jax.random.split(k, 3))(jaxmpc.key(7))):
        assert np.asarray(jax.random.key_data(children)).tolist() == want
    want = threefry(data, np.array(9), keys._TAG_FOLD)
    for folded in (jax.random.fold_in(jaxmpc.key(7), 9),
                   jax.jit(lambda k: jax.random.fold_in(k, 9))(jaxmpc.key(7))):
        assert np.asarray(jax.random.key_data(folded)).tolist() == want


def test_ring_random_dtype_shape():
    r = ring.random(jax.random.key(6), (3, 0, 2))
    assert r.shape == (3, 0, 2) and r.dtype == jnp.uint64
    r = ring.random(jax.random.key(7), (4096,))
    assert int(jnp.max(r >> jnp.uint64(63))) == 1  # the top bit is used (not a 32-bit draw)


_X64_OFF_SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    assert not jax.config.read("jax_enable_x64")
    import jaxmpc
    from jaxmpc.errors import X64Error
    failures = []
    for name, call in [
        ("require_x64", lambda: jaxmpc.core.ring.require_x64()),
        ("FixedPoint", lambda: jaxmpc.FixedPoint(10, 3)),
        ("share", lambda: jaxmpc.share(jax.random.key(0), np.ones(3), None)),
    ]:
        try:
            call()
            failures.append(name + ": no error")
        except X64Error as e:
            if "jax_enable_x64" not in str(e) or "JAX_ENABLE_X64=1" not in str(e):
                failures.append(name + ": message lacks the fix: " + str(e))
        except Exception as e:
            failures.append(name + ": " + type(e).__name__ + ": " + str(e))
    print("FAILURES", failures)
    assert not failures, failures
""")


def test_x64_disabled_raises_x64error():
    """In a fresh interpreter without JAX_ENABLE_X64, every entry point raises X64Error naming the
    fix, instead of silently computing in uint32 (subprocess: leaves this session's config alone)."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env["JAX_PLATFORMS"] = "cpu"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", _X64_OFF_SCRIPT], env=env, cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAILURES []" in proc.stdout


def test_errors_are_the_documented_classes():
    """Every jaxmpc error is a JaxMPCError and also the matching builtin (ValueError / TypeError)."""
    assert issubclass(jaxmpc.EncodingError, ValueError) and issubclass(jaxmpc.EncodingError, jaxmpc.JaxMPCError)
    assert issubclass(jaxmpc.ShareMismatchError, ValueError)
    assert issubclass(jaxmpc.ProtocolError, ValueError)
    assert issubclass(jaxmpc.InputTypeError, TypeError)
    assert issubclass(jaxmpc.X64Error, RuntimeError) and issubclass(jaxmpc.X64Error, jaxmpc.JaxMPCError)


def test_import_creates_no_array_before_x64_is_on():
    """Importing jaxmpc before enabling x64 must not create arrays (they would be 32-bit, with a
    warning, and stay so): a fresh interpreter with warnings as errors imports it cleanly."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-W", "error", "-c", "import jaxmpc"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
