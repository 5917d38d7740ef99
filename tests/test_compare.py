"""Secure comparison (jaxmpc.ops.compare): MSB, ReLU and its bit, less / greater / equal / not_equal,
sign, abs, maximum / minimum, clamp, where.

Every result is a 0/1 (or -1/0/1) plain ring integer, or a product by one with no truncation, so all
checks against the plaintext oracle are EXACT (ring elements compared bit for bit).

Compile time is the budget here (2 CPU cores for the whole suite), so every test shares a few jitted
functions, compiled once per party count and kept in module-level caches; inputs have fixed shapes.
Privacy tests use fixed seeds: their statistics are deterministic, so they cannot flake.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import jaxmpc
from jaxmpc import FixedPoint, Shared
from jaxmpc.trace import accounting
from jaxmpc.ops import compare
from jaxmpc.protocols.additive import binary
from jaxmpc.core import ring
from jaxmpc.errors import InputTypeError, ShareMismatchError

PARTIES = (2, 3, 5)
FXP = FixedPoint(10, 3)
ULP = 1e-3
BIG = float(np.nextafter(2.0**62 / 1e6, 0.0))  # largest magnitude FixedPoint(10, 3) accepts
BIG2 = float(np.nextafter(2.0**30, 0.0))  # the same for FixedPoint(2, 16): |x| < 2^62 / 2^32
ALPHA = 1e-5  # significance of the privacy tests (deterministic: fixed seeds)


def _key(i: int):
    return jax.random.key(i)


def _float_inputs():
    """x, y, g (float64[48]): edge values and random ones; y is near x where that matters."""
    rng = np.random.default_rng(3)
    edge = np.array([0.0, ULP, -ULP, 2 * ULP, -2 * ULP, 1.0, -1.0, BIG, -BIG, BIG - ULP,
                     -(BIG - ULP), 0.5, -0.5, 123.456, -123.456, 1e6])
    rand = np.round(np.concatenate([rng.normal(0, 1, 16), rng.normal(0, 1e4, 16)]), 3)
    x = np.concatenate([edge, rand])
    # y: equal to x, one ulp either side, the opposite extreme, zero, random
    y = x.copy()
    y[1:4] = x[1:4] + np.array([ULP, -ULP, 0.0])
    y[7], y[8], y[9], y[10] = -BIG, BIG, BIG, -BIG
    y[16:32] = x[16:32] + ULP * rng.integers(-1, 2, 16)
    y[32:] = np.round(rng.normal(0, 1e4, 16), 3)
    g = np.round(rng.normal(0, 10, x.shape), 3)
    return x, y, g


def _ring_inputs():
    """r, s (int64[48]): ring extremes for msb (exact everywhere) and for less (|r - s| < 2^63)."""
    rng = np.random.default_rng(4)
    top = 2**62 - 1
    edge = np.array([0, 1, -1, 2, -2, top, -top, 2**62, -2**62, 2**63 - 1, -2**63, 2**61, -2**61,
                     12345, -12345, 7], dtype=np.int64)
    r = np.concatenate([edge, rng.integers(-2**63, 2**63 - 1, 32, dtype=np.int64, endpoint=True)])
    s = np.concatenate([np.array([0, 0, 0, 2, -1, -top, top, top, -top, 0, 0, 2**61, 2**61, 12346,
                                  -12346, 7], dtype=np.int64),
                        rng.integers(-2**62 + 1, 2**62 - 1, 32, dtype=np.int64)])
    s[16:] = np.where(np.abs(r[16:]) < 2**62, s[16:], 0)  # keep |r - s| < 2^63 for less
    r[16:] = np.where(np.abs(r[16:]) < 2**62, r[16:], r[16:] // 4)
    return r, s


CLAMP_HI = 123.456  # an upper bound equal to one of the inputs
FULL_N = 3  # every operation is checked at this party count (it exercises the compressors too)


@functools.cache
def _suite(n: int):
    """One jitted function per party count, cached across tests. All of the party-count-dependent
    protocol is in msb, so for n != FULL_N only the ReLU (with its backward), msb and less (on
    fixed-point and ring values) are compiled; the thin wrappers are checked at FULL_N."""

    @jax.jit
    def run(key, x, y, g, r, s):
        k = jax.random.split(key, 15)
        out, d = jaxmpc.relu(k[0], x)
        res = {"relu": out, "drelu": d,
               "backward": jaxmpc.mul(k[1], d, g),  # the relu backward reuses the bit
               "msb_ring": jaxmpc.msb(k[2], r),
               "less": jaxmpc.less(k[3], x, y),
               "less_ring": jaxmpc.less(k[4], r, s)}
        if n == FULL_N:
            res.update({
                "greater": jaxmpc.greater(k[5], x, y),
                "sign": jaxmpc.sign(k[6], x),
                "maximum": jaxmpc.maximum(k[7], x, y),
                "min_where": jaxmpc.where(k[8], res["less"], x, y),
                "relu_ring": jaxmpc.relu(k[9], r)[0],
                "minimum": jaxmpc.minimum(k[10], x, y),
                "equal": jaxmpc.equal(k[11], x, y),
                "not_equal": jaxmpc.not_equal(k[12], x, y),
                "abs": jaxmpc.abs(k[13], x),
                "clamp": jaxmpc.clamp(k[14], x, -1.0, CLAMP_HI),
            })
        return res

    return run


@functools.cache
def _results(n: int):
    x, y, g = _float_inputs()
    r, s = _ring_inputs()
    ks = jax.random.split(_key(100 + n), 6)
    shared = [jaxmpc.share(ks[0], x, FXP, n), jaxmpc.share(ks[1], y, FXP, n),
              jaxmpc.share(ks[2], g, FXP, n), jaxmpc.share(ks[3], r, None, n),
              jaxmpc.share(ks[4], s, None, n)]
    out = _suite(n)(ks[5], *shared)
    return out, {k: _ints(v) for k, v in out.items()}


def _ints(x: Shared) -> np.ndarray:
    """The opened value as signed ring integers (exact; no decoding to float)."""
    return np.asarray(ring.to_signed(ring.party_sum(x.shares)))


def _enc(v, fxp=FXP):
    """The signed ring integers of a float array (exactly what share() encodes)."""
    return np.asarray(ring.to_signed(fxp.encode(v)))


@pytest.mark.parametrize("n", PARTIES)
def test_oracle_edge_and_random_values(n):
    out, res = _results(n)
    x, y, g = (_enc(v) for v in _float_inputs())
    r, s = _ring_inputs()
    pos = (x > 0).astype(np.int64)
    np.testing.assert_array_equal(res["drelu"], pos)  # 0 at 0 (PyTorch / JAX convention)
    np.testing.assert_array_equal(res["relu"], np.maximum(x, 0))
    np.testing.assert_array_equal(res["backward"], g * pos)
    np.testing.assert_array_equal(res["msb_ring"], (r < 0).astype(np.int64))
    np.testing.assert_array_equal(res["less"], (x < y).astype(np.int64))
    np.testing.assert_array_equal(res["less_ring"], (r < s).astype(np.int64))
    if n == FULL_N:
        np.testing.assert_array_equal(res["greater"], (x > y).astype(np.int64))
        np.testing.assert_array_equal(res["sign"], np.sign(x))
        np.testing.assert_array_equal(res["maximum"], np.maximum(x, y))
        np.testing.assert_array_equal(res["min_where"], np.minimum(x, y))
        np.testing.assert_array_equal(res["minimum"], np.minimum(x, y))
        np.testing.assert_array_equal(res["equal"], (x == y).astype(np.int64))
        np.testing.assert_array_equal(res["not_equal"], (x != y).astype(np.int64))
        np.testing.assert_array_equal(res["abs"], np.abs(x))
        np.testing.assert_array_equal(res["clamp"], np.clip(x, _enc(-1.0), _enc(CLAMP_HI)))
        ok = r != np.iinfo(np.int64).min  # -2^63 has no negation in the ring: not a valid input
        np.testing.assert_array_equal(res["relu_ring"][ok], np.where(r > 0, r, 0)[ok])
    # the inputs exercise both outcomes of every comparison, equality and one-unit gaps
    assert 0 < pos.sum() < len(pos) and 0 < (x < y).sum() and 0 < (x > y).sum()
    assert (x == y).any() and (np.abs(x - y) == 1).any() and 0 < (r < s).sum() < len(r)
    assert x.max() == _enc(BIG) and x.min() == -_enc(BIG)


@pytest.mark.parametrize("n", PARTIES)
def test_result_types(n):
    out, _ = _results(n)
    for name in ("drelu", "msb_ring", "less", "greater", "sign", "less_ring", "relu_ring"):
        if name in out:
            assert out[name].fxp is None and out[name].shares.dtype == jnp.uint64, name
            assert out[name].n_parties == n and out[name].shape == (48,), name
    for name in ("relu", "backward", "maximum", "min_where"):
        if name in out:
            assert out[name].fxp is not None and out[name].fxp.same_static(FXP), name


def test_bit_shares_are_not_trivial():
    """The output bit is re-randomised: its shares are not 0/1 (the B2A mask is really applied)."""
    out, _ = _results(2)
    shares = np.asarray(out["drelu"].shares)
    assert (shares > 1).mean() > 0.9


def test_base2_largest_magnitudes():
    fxp = FixedPoint(2, 16)
    x = np.array([BIG2, -BIG2, 2.0**-16, -(2.0**-16), 0.0, 3.25])
    xs = jaxmpc.share(_key(7), x, fxp, 2)
    y, d = _relu_jit(_key(8), xs)
    np.testing.assert_array_equal(_ints(d), (x > 0).astype(np.int64))
    np.testing.assert_array_equal(_ints(y), np.maximum(_enc(x, fxp), 0))
    assert _enc(x, fxp)[0] >= 2**46 - 1


@jax.jit
def _relu_jit(key, x):
    return jaxmpc.relu(key, x)


def test_vmap_over_keys():
    x = np.array([-2.0, -ULP, 0.0, ULP, 5.5, -BIG, BIG, 1.0])
    xs = jaxmpc.share(_key(9), x, FXP, 3)
    keys = jax.random.split(_key(10), 4)

    @jax.jit
    def f(keys):
        return jax.vmap(lambda k: jaxmpc.relu(k, xs))(keys)

    y, d = f(keys)
    assert d.shares.shape == (4, 3, 8)  # vmap puts the batch axis first
    bits = np.asarray(ring.to_signed(ring.party_sum(jnp.moveaxis(d.shares, 1, 0))))
    np.testing.assert_array_equal(bits, np.broadcast_to((x > 0).astype(np.int64), (4, 8)))
    vals = np.asarray(ring.to_signed(ring.party_sum(jnp.moveaxis(y.shares, 1, 0))))
    np.testing.assert_array_equal(vals, np.broadcast_to(_enc(np.maximum(x, 0)), (4, 8)))
    # different keys give different shares of the same bit
    assert len({np.asarray(d.shares[i]).tobytes() for i in range(4)}) == 4


def test_vmap_over_precision():
    precisions = jnp.arange(0, 10, 3)  # base 10: 0, 3, 6, 9 (traced precision)
    ulps = 10.0 ** -np.asarray(precisions, dtype=np.float64)
    xs = np.stack([np.array([-1.5, -u, 0.0, u, 2.0, -7.0]) for u in ulps])
    keys = jax.random.split(_key(11), (len(ulps), 2))

    @jax.jit
    @jax.vmap
    def f(p, x, k):
        fxp = FixedPoint(10, p)
        y, d = jaxmpc.relu(k[1], jaxmpc.share(k[0], x, fxp, 2))
        return jaxmpc.reveal(y), jaxmpc.reveal(d)

    y, d = f(precisions, xs, keys)
    expect = np.maximum(xs, 0)
    expect[0] = np.maximum(np.round(xs[0]), 0)  # precision 0: -1.5 and 2.0 round to -2 and 2
    np.testing.assert_array_equal(np.asarray(d), (expect > 0).astype(np.int64))
    np.testing.assert_allclose(np.asarray(y), expect, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n, shape", [(2, ()), (3, ()), (2, (0,)), (3, (2, 0, 3))])
def test_scalar_and_empty_shapes(n, shape):
    x = np.full(shape, -0.25) if shape == () else np.zeros(shape)
    xs = jaxmpc.share(_key(12), x, FXP, n)
    if shape == ():
        (y, d), s = _relu_sign_jit(_key(13), xs)
        assert s.shape == () and s.fxp is None and int(jaxmpc.reveal(s)) == -1
    else:
        y, d = _relu_jit(_key(13), xs)
    assert y.shape == shape and d.shape == shape and d.fxp is None
    np.testing.assert_array_equal(np.asarray(jaxmpc.reveal(d)), (x > 0).astype(np.int64))
    np.testing.assert_array_equal(np.asarray(jaxmpc.reveal(y)), np.maximum(x, 0))


@jax.jit
def _relu_sign_jit(key, x):
    k1, k2 = jax.random.split(key)
    return jaxmpc.relu(k1, x), jaxmpc.sign(k2, x)


def test_public_operands_and_broadcasting():
    x = jaxmpc.share(_key(15), np.array([[-1.0, 0.0, 2.0]]), FXP, 2)
    bit = jaxmpc.share(_key(17), np.array([1, 0, 1]), None, 2)

    @jax.jit
    def f(key, x, bit):
        k = jax.random.split(key, 4)
        return (jaxmpc.greater(k[0], x, 0.0), jaxmpc.less(k[1], 0.0, x),
                jaxmpc.maximum(k[2], x, jnp.array([[0.5], [-5.0]])),  # (1, 3) vs (2, 1)
                jaxmpc.where(k[3], bit, x, 9.0))

    gt, lt, m, w = jaxmpc.reveal(f(_key(16), x, bit))
    np.testing.assert_array_equal(np.asarray(gt), [[0, 0, 1]])
    np.testing.assert_array_equal(np.asarray(lt), [[0, 0, 1]])
    np.testing.assert_array_equal(np.asarray(m), [[0.5, 0.5, 2.0], [-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(np.asarray(w), [[-1.0, 9.0, 2.0]])


def test_bad_input_errors():
    k = _key(18)
    x = jaxmpc.share(_key(19), np.array([1.0]), FXP, 2)
    x3 = jaxmpc.share(_key(20), np.array([1.0]), FXP, 3)
    with pytest.raises(InputTypeError, match="must be a jaxmpc.Shared"):
        jaxmpc.relu(k, np.array([1.0]))
    with pytest.raises(InputTypeError, match="must be a jaxmpc.Shared"):
        jaxmpc.msb(k, 1.0)
    with pytest.raises(InputTypeError, match="at least one of x and y"):
        jaxmpc.less(k, 1.0, 2.0)
    with pytest.raises(InputTypeError, match="fxp=None"):
        jaxmpc.where(k, x, x, x)
    with pytest.raises(ShareMismatchError):
        jaxmpc.less(k, x, x3)
    with pytest.raises(InputTypeError, match="PRNG key"):
        jaxmpc.relu(0, x)
    with pytest.raises(InputTypeError, match=r"lo <= hi everywhere.* with lo > hi\. Swap"):
        jaxmpc.clamp(k, x, 1.0, -1.0)
    with pytest.raises(InputTypeError, match=r"broadcast to x's shape \(1,\)"):
        jaxmpc.clamp(k, x, np.zeros(3), 1.0)
    with pytest.raises(InputTypeError, match="fixed-point Shared"):
        jaxmpc.clamp(k, jaxmpc.share(_key(21), np.array([1]), None, 2), 0.0, 1.0)
    with pytest.raises(InputTypeError, match="at least one of x and y"):
        jaxmpc.equal(k, 1.0, 1.0)


# ---- cost: the accounting matches the docstring formulas; the adder is a loop -------------------
def _cost(fn, *args):
    t = accounting.tally(fn, *args)
    rounds = sum(c.rounds for c in t.ops.values())
    sent = sum(c.bytes_per_party for c in t.ops.values())
    dealer_b = sum(c.dealer_bytes_per_party for c in t.ops.values())
    return rounds, sent, dealer_b


def _abstract(n, shape, fxp=FXP):
    return Shared(jax.ShapeDtypeStruct((n,) + shape, jnp.uint64), fxp)


@pytest.mark.parametrize("n", PARTIES + (4, 7))
def test_cost_formulas(n):
    m = 16  # a multiple of 8, so 1-bit openings are whole bytes under any accounting convention
    x = _abstract(n, (4, 4))
    layers = {2: 0, 3: 1, 4: 2, 5: 3, 7: 4}[n]
    csa = 2 * (n - 2) * m  # compressor ANDs: 2 words opened, 3 dealt each
    # adder: the generate word (2 opened, 3 dealt per element), then the tree on 16 elements:
    # 8, 4, 2, 1, 1 packed words with two ANDs sharing an operand (3 opened, 5 dealt), 1 with one
    opened, dealt = 2 * csa + 2 * m + 3 * 16 + 2, 3 * csa + 3 * m + 5 * 16 + 3
    assert binary.tree_words(m) == (8, 4, 2, 1, 1, 1)
    assert binary.csa_layers(n) == layers and binary.msb_words(n, m) == (opened, dealt)
    rounds, sent, dealer_b = _cost(jaxmpc.msb, _key(0), x)
    assert rounds == binary.msb_rounds(n) == layers + 8
    assert sent == 8 * (n - 1) * opened + (n - 1) * m // 8
    assert dealer_b == 8 * dealt + 65 * m // 8
    rounds, sent, dealer_b = _cost(jaxmpc.relu, _key(0), x)
    assert rounds == layers + 9
    assert sent == 8 * (n - 1) * (opened + 2 * m) + (n - 1) * m // 8
    assert dealer_b == 8 * (dealt + 3 * m) + 65 * m // 8
    rounds_s, sent_s, _ = _cost(jaxmpc.sign, _key(0), x)  # one msb of 2m elements
    assert rounds_s == layers + 8
    assert sent_s == 8 * (n - 1) * binary.msb_words(n, 2 * m)[0] + (n - 1) * 2 * m // 8


def test_cost_per_element_for_large_inputs():
    """The docstrings' per-element figures for 2 parties (m a multiple of 64)."""
    m = 64 * 40
    x = _abstract(2, (m,))
    _, sent, dealer_b = _cost(jaxmpc.msb, _key(0), x)
    assert (sent / m, dealer_b / m) == (39.625, 71.25)  # a full Kogge-Stone adder sent 192.125
    _, sent, _ = _cost(jaxmpc.relu, _key(0), x)
    assert sent / m == 55.625


@pytest.mark.parametrize("n, m", [(2, 3), (2, 65), (2, 130), (3, 33)])
def test_carry_tree_pads_and_packs_any_size(n, m):
    """Sizes whose word counts are odd at some level (a zero word is paired in) or reach a lone
    word early: the sign bit is exact for random and edge values."""
    rng = np.random.default_rng(m)
    v = rng.integers(-(2**63), 2**63, m, dtype=np.int64, endpoint=False)
    edges = [0, -1, 1, -(2**63), 2**63 - 1, -(2**62), 2**62]
    v[:min(m, len(edges))] = edges[:m]
    k_share, k_msb = jax.random.split(_key(m))
    shares = ring.share_value(k_share, ring.const(jnp.asarray(v)), n)
    bit = jax.jit(binary.msb_shares)(k_msb, shares)
    np.testing.assert_array_equal(np.asarray(ring.party_sum(bit)), (v < 0).astype(np.uint64))


def test_adder_program_does_not_grow_with_the_size():
    """The tree's six levels are unrolled, so the traced program is bounded whatever the size:
    3000 elements pack words at every level, 3 elements at the first only (a per-word loop or an
    unrolled per-element adder would grow with the size). The cap counts the per-party draws:
    each of msb's three draws splits its key into n + 1 streams."""
    def eqns(m):
        jaxpr = jax.make_jaxpr(binary.msb_shares)(_key(0), _abstract(2, (m,)).shares)
        return len(jaxpr.jaxpr.eqns)
    small, large = eqns(3), eqns(3000)
    assert small <= large == eqns(30000) < 480


# ---- privacy: everything opened is uniform, whatever the secret ---------------------------------
N_SAMPLES = 1024


@functools.cache
def _transcript_fn(n: int):
    """jit(vmap over keys): every word one msb of a fixed secret opens, as uint64[S, k, 1]."""

    @jax.jit
    def run(keys, v):
        def one(k):
            k_share, k_msb = jax.random.split(k)
            shares = ring.share_value(k_share, v, n)
            tr: list = []
            binary.msb_shares(k_msb, shares, tr)
            return jnp.concatenate([t.reshape((-1, 1)) for t in tr], axis=0)

        return jax.vmap(one)(keys)

    return run


def _bit_counts(words: np.ndarray) -> np.ndarray:
    """Counts of ones per (opened word, bit position) over samples and elements: int[k, 64]
    (bit 0 is the least significant)."""
    le = np.ascontiguousarray(words, dtype="<u8")
    bits = np.unpackbits(le.view(np.uint8).reshape(le.shape + (8,)), axis=-1, bitorder="little")
    return bits.sum(axis=(0, 2), dtype=np.int64)


def _transcript(n: int, secret: np.ndarray, seed: int) -> np.ndarray:
    keys = jax.random.split(_key(seed), N_SAMPLES)
    return np.asarray(_transcript_fn(n)(keys, ring.const(jnp.asarray(secret, jnp.int64))))


def _uniform_pvalue(words: np.ndarray, mask: np.ndarray) -> float:
    """Chi-square test that every (word, bit) in ``mask`` is a fair coin."""
    counts = _bit_counts(words)[mask]
    total = words.shape[0] * words.shape[2]
    chi2 = np.sum((counts - total / 2) ** 2 / (total / 4))
    return float(stats.chi2.sf(chi2, counts.size))


def _two_sample_pvalue(wa: np.ndarray, wb: np.ndarray, mask: np.ndarray) -> float:
    """Chi-square test that the per-bit frequencies of two transcripts are the same."""
    ca, cb = _bit_counts(wa)[mask], _bit_counts(wb)[mask]
    total = wa.shape[0] * wa.shape[2]
    chi2 = np.sum((ca - cb) ** 2 / (total / 2))
    return float(stats.chi2.sf(chi2, ca.size))


def _opened_mask(words: np.ndarray, m: int) -> np.ndarray:
    """(word, bit) positions that carry opened data: all 64 bits of the AND openings, bit 0 of the
    last ``m`` rows (the 1-bit B2A openings of the ``m`` elements)."""
    mask = np.ones((words.shape[1], 64), dtype=bool)
    mask[-m:, 1:] = False
    return mask


SECRETS = {
    "zero": np.zeros(8, np.int64),
    "far_negative": np.full(8, -(2**62) + 12345, np.int64),
}


@pytest.mark.parametrize("n", (2, 3))
def test_openings_are_uniform_and_independent_of_the_secret(n):
    wa = _transcript(n, SECRETS["zero"], 21)
    wb = _transcript(n, SECRETS["far_negative"], 22)
    m = 8
    # the AND gates' openings (their count from the cost formula), then one B2A bit per element
    assert wa.shape == (N_SAMPLES, binary.msb_words(n, m)[0] + m, 1)
    mask = _opened_mask(wa, m)
    assert ((wa[:, -m:] >> np.uint64(1)) == 0).all()  # the B2A openings are single bits
    assert _uniform_pvalue(wa, mask) > ALPHA
    assert _uniform_pvalue(wb, mask) > ALPHA
    assert _two_sample_pvalue(wa, wb, mask) > ALPHA
    # no mask reuse inside one run: XORs of successive AND openings are uniform too
    xa = wa[:, :-m - 1] ^ wa[:, 1:-m]
    assert _uniform_pvalue(xa, np.ones((xa.shape[1], 64), bool)) > ALPHA


def test_privacy_statistics_detect_a_leak():
    """The same statistics reject an unmasked opening: p = w0 XOR w1 (what the first AND would
    reveal without its triple) differs between the two secrets and is far from uniform."""
    n = 2

    def leaky(secret, seed):
        keys = jax.random.split(_key(seed), N_SAMPLES)
        shares = jax.vmap(lambda k: ring.share_value(k, ring.const(jnp.asarray(secret)), n))(keys)
        return np.asarray(shares[:, 0] ^ shares[:, 1])[:, None, :]

    la, lb = leaky(SECRETS["zero"], 23), leaky(SECRETS["far_negative"], 24)
    mask = np.ones((1, 64), bool)
    assert _two_sample_pvalue(la, lb, mask) < 1e-12
    assert _uniform_pvalue(la, mask) < 1e-12
