r"""Privacy: the joint view of any n-1 parties is independent of the secret, for every protocol.

A *coalition* is every set of n-1 parties (for n = 2 and 3: each choice of the one honest party).
Its *view* of one protocol run is everything it holds or sees:

- its members' shares of the inputs;
- its members' shares of every piece of dealer material the run consumes (Beaver triples,
  truncation material, binary AND triples, random bits), recomputed from the run's own keys with
  :mod:`jaxmpc.protocols.additive.dealer`, and checked to be the material used: every opened value minus (or XOR)
  the recomputed mask equals the plaintext value the protocol masked with it, bit for bit;
- every value opened during the run (public to all), recorded by the protocols themselves through
  their ``transcript`` lists (:func:`jaxmpc.protocols.additive.beaver`, :func:`jaxmpc.truncate_shares`,
  :func:`jaxmpc.protocols.additive.binary.msb_shares`). The runs are compositions of those internals, checked to be
  bit-identical to the public functions (``share``, ``mul``, ``matmul``, ``div_public``, ``relu``).

Each view is collected over ``S`` independent keys (one ``vmap``) for two very different secrets
(zero vs large values, and for ReLU positive vs negative values: the bit the protocol computes),
and compared with a two-sample test per *feature*:

- every view component (one party's share of one sharing, or one opened array);
- the coalition's *combined* share of every sharing (sum, or XOR for binary sharings): all that
  additive sharing lets a coalition do with its shares;
- every pair of combined shares and openings, as ``u + v`` and ``u - v`` (arithmetic) and
  ``u ^ v`` (binary; a mixed pair gets all three): the relations through which a mask known to the
  coalition or reused would show (``e + a`` is ``x`` if the coalition knew the whole mask ``a``;
  ``e - e'`` is ``x - x'`` if two openings shared a mask).

Statistics (numpy only): two-sample chi-square on the top 4 and the low 4 bits of every feature;
for components and combined shares also a per-bit frequency test and a Kolmogorov-Smirnov test on
the value / 2^64. A run passes if the smallest p-value times the number of p-values (Bonferroni)
exceeds ``ALPHA``. Seeds are fixed, so the suite is deterministic.

Controls (a test that cannot fail is a defect): with the honest party's shares added to the view
(a coalition of all n parties), or with one opening replaced by what it is when the dealer's mask
is zero, the same statistic rejects (p-values below ``1e-30``; measured: 0.0 in float64); so does
a real run of Beaver's protocol with a dealer patched to hand out zero masks.

Measured (this file's seeds; Bonferroni-adjusted p-value of the smallest over all coalitions):
share 0.099 / 0.16 (n = 2 / 3), mul 1 / 0.46, matmul 0.61 / 0.14, div_public 0.85 / 0.078,
relu 0.25 / 0.091 (2826 and 3876 p-values per coalition: the packed carry tree opens fewer words,
and its features, of another length, are compared among themselves).

Limits: relations among three or more features (e.g. ``e - x_C + a_C`` for a coalition C) are not
tested directly, nor nonlinear ones other than the XOR / add mixtures above.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc import FixedPoint
from jaxmpc.ops import compare
from jaxmpc.protocols.additive import binary, dealer, family, truncation
from jaxmpc.core import gemm, ring
from jaxmpc.protocols import shared

FXP = FixedPoint(10, 3)
S = 2048  # independent runs (keys) per secret
ALPHA = 1e-4  # family-wise significance after Bonferroni; seeds are fixed, so nothing flakes
_U = np.uint64


# ---- statistics (numpy) -------------------------------------------------------------------------
def chi2_sf(x: float, dof: int) -> float:
    """Upper tail of the chi-square distribution with an integer number of degrees of freedom."""
    if dof <= 0:
        return 1.0
    h = x / 2.0
    if dof % 2 == 0:  # sf = exp(-h) sum_{i < dof/2} h^i / i!
        term = total = math.exp(-h)
        for i in range(1, dof // 2):
            term *= h / i
            total += term
        return min(1.0, total)
    # odd: sf = erfc(sqrt(h)) + exp(-h) sum_{i=1}^{(dof-1)/2} h^(i-1/2) / Gamma(i+1/2)
    total = math.erfc(math.sqrt(h))
    term = math.exp(-h) * math.sqrt(h) / math.gamma(1.5) if h > 0 else 0.0
    for i in range(1, (dof + 1) // 2):
        total += term
        term *= h / (i + 0.5)
    return min(1.0, total)


def _homogeneity_pvalues(ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """Chi-square two-sample (homogeneity) p-values from bucket counts ``int[F, K]`` of two samples
    of equal size: chi2 = sum (a - b)^2 / (a + b) over non-empty buckets, dof = non-empty - 1."""
    tot = ca + cb
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = np.where(tot > 0, (ca - cb) ** 2 / np.maximum(tot, 1), 0.0).sum(axis=1)
    dof = (tot > 0).sum(axis=1) - 1
    return np.array([chi2_sf(float(c), int(d)) for c, d in zip(chi2, dof)])


def nibble_counts(z: np.ndarray) -> np.ndarray:
    """Counts of the top 4 bits (columns 0..15) and the low 4 bits (16..31) of each row of
    ``uint64[F, N]``: ``int[F, 32]``."""
    f = z.shape[0]
    byte = ((z >> _U(56)) & _U(0xF0)) | (z & _U(15))  # top nibble, low nibble
    idx = byte.astype(np.int64) + (np.arange(f, dtype=np.int64) * 256)[:, None]
    joint = np.bincount(idx.ravel(), minlength=256 * f).reshape(f, 16, 16)
    return np.concatenate([joint.sum(axis=2), joint.sum(axis=1)], axis=1)


def nibble_pvalues(ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """Two-sample chi-square on the top and on the low 4 bits, from :func:`nibble_counts` of both."""
    return np.concatenate([_homogeneity_pvalues(ca[:, :16], cb[:, :16]),
                           _homogeneity_pvalues(ca[:, 16:], cb[:, 16:])])


def bit_pvalues(za: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """Per feature, the smallest two-proportion p-value over its 64 bits, times 64 (Bonferroni)."""
    n = za.shape[1]
    fa = np.stack([((za >> _U(b)) & _U(1)).sum(axis=1) for b in range(64)], axis=1) / n
    fb = np.stack([((zb >> _U(b)) & _U(1)).sum(axis=1) for b in range(64)], axis=1) / n
    var = (fa + fb) / 2 * (1 - (fa + fb) / 2)
    zscore = np.where(var > 0, np.abs(fa - fb) / np.sqrt(np.maximum(var, 1e-300) * 2 / n), 0.0)
    p = np.vectorize(math.erfc)(zscore / math.sqrt(2)).min(axis=1) * 64
    return np.minimum(p, 1.0)


def ks_pvalues(za: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """Kolmogorov-Smirnov two-sample p-values (asymptotic) on each feature's value / 2^64."""
    out = []
    for a, b in zip(za, zb):
        a, b = np.sort(a >> _U(11)), np.sort(b >> _U(11))  # 53 bits: exact in float64
        grid = np.concatenate([a, b])
        d = np.abs(np.searchsorted(a, grid, side="right") / a.size
                   - np.searchsorted(b, grid, side="right") / b.size).max()
        ne = a.size * b.size / (a.size + b.size)
        lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
        q = 2 * sum((-1) ** (j - 1) * math.exp(-2 * j * j * lam * lam) for j in range(1, 101))
        out.append(min(1.0, max(0.0, q)) if lam > 0.3 else 1.0)
    return np.array(out)


# ---- views --------------------------------------------------------------------------------------
# A run is {"shares": {name: uint64[S, n, E]}, "opened": {name: uint64[S, E]}, "binary": names of
# XOR sharings and XOR-masked openings}: E elements, each its own feature, so that relations between
# the elements of one array (a mask reused for two elements, or offset by a constant) are features.
def _features(run: dict, coalition: tuple[int, ...]) -> tuple:
    """The coalition's view as features ``(singles, summary, binary)``: rows of ``uint64[F, S]``,
    ``singles`` (each member's share of each element of each sharing, then the summary rows),
    ``summary`` (the combined shares and the openings, element by element) and ``binary`` (which
    summary rows are XOR sharings or XOR-masked)."""
    parts, combined, binary = [], [], []
    for name, arr in run["shares"].items():
        held = arr[:, list(coalition)]  # [S, |C|, E]
        op = np.bitwise_xor if name in run["binary"] else np.add
        if len(coalition) > 1:
            parts.extend(held[:, i].T for i in range(len(coalition)))
        combined.append(op.reduce(held, axis=1).T)
        binary += [name in run["binary"]] * arr.shape[-1]
    for name, arr in run["opened"].items():
        combined.append(arr.T)
        binary += [name in run["binary"]] * arr.shape[-1]
    summary = np.concatenate(combined)
    return (np.concatenate(parts + [summary]), summary, np.array(binary))


def pair_counts(summary: np.ndarray, binary: np.ndarray) -> np.ndarray:
    """:func:`nibble_counts` of the relations of every pair of summary rows ``u, v``: ``u + v`` and
    ``u - v`` unless both are binary, ``u ^ v`` unless both are arithmetic (a mixed pair gets all
    three: msb embeds arithmetic shares as binary words)."""
    out = [np.zeros((0, 32), np.int64)]
    for i in range(len(summary) - 1):
        u, v = summary[i][None], summary[i + 1:]
        arith = ~(binary[i] & binary[i + 1:])
        xor = binary[i] | binary[i + 1:]
        out.append(nibble_counts(np.concatenate([u + v[arith], u - v[arith], u ^ v[xor]])))
    return np.concatenate(out)


def view_pvalues(run_a: dict, run_b: dict, coalition: tuple[int, ...]) -> np.ndarray:
    """Every p-value of the two-sample tests on the coalition's views for two secrets."""
    (sa, ua, kind), (sb, ub, _) = _features(run_a, coalition), _features(run_b, coalition)
    return np.concatenate([nibble_pvalues(nibble_counts(sa), nibble_counts(sb)), bit_pvalues(sa, sb),
                           ks_pvalues(sa, sb),
                           nibble_pvalues(pair_counts(ua, kind), pair_counts(ub, kind))])


def bonferroni(p: np.ndarray) -> float:
    """The family-wise p-value: smallest p times the number of tests (capped at 1)."""
    return float(min(1.0, p.min() * p.size))


def coalitions(n: int):
    """Every coalition of n-1 parties, keyed by the honest party."""
    return {h: tuple(i for i in range(n) if i != h) for h in range(n)}


# ---- protocol runs (jit(vmap over keys)), with their openings and the material they consumed -----
def _np(tree):
    return jax.tree_util.tree_map(np.asarray, tree)


def _pack(shares: dict, opened: dict, binary=()):
    """A run from arrays ``[S, n, ...]`` (shares) and ``[S, ...]`` (openings)."""
    return {"shares": {k: v.reshape(v.shape[:2] + (-1,)) for k, v in shares.items()},
            "opened": {k: v.reshape(v.shape[0], -1) for k, v in opened.items()},
            "binary": set(binary)}


def _merge(first: dict, second: dict) -> dict:
    """The run of two protocol calls: the second call's names get a prime."""
    return {part: {**first[part], **{k + "'": v for k, v in second[part].items()}}
            for part in ("shares", "opened")} | {
        "binary": first["binary"] | {k + "'" for k in second["binary"]}}


def _twice(one):
    """``one(key, *secret)`` and ``one(key', *secret flipped)``: every run makes two calls of its
    protocol, the second on the secret's elements in reverse order, so that a mask shared by two
    calls shows as a relation between them (``e - e'`` would be ``x - flip(x)``)."""
    def both(key, *secret):
        k1, k2 = jax.random.split(key)
        return one(k1, *secret), one(k2, *(jnp.flip(v) for v in secret))
    return both


@functools.cache
def _share_fn(n):
    return jax.jit(jax.vmap(_twice(lambda k, v: jaxmpc.share(k, v, FXP, n_parties=n).shares), (0, None)))


@functools.cache
def _mul_fn(n: int, kind: str):
    """One mul / matmul / div_public run per key: the public function's output, and the same run
    composed of beaver + truncate_shares with transcripts and the recomputed dealer material."""
    def one(key, xv, yv):
        k_x, k_y, k_op, k_r = jax.random.split(key, 4)
        x = jaxmpc.share(k_x, xv, FXP, n_parties=n)
        shares = {"x": x.shares}
        tr: list = []
        if kind == "div":  # truncation alone: divide by a public integer
            d = jnp.uint64(7)
            ref = jaxmpc.div_public(jax.random.clone(k_op), x, 7)
            k_trunc, z = k_op, x.shares
        else:
            y = jaxmpc.share(k_y, yv, FXP, n_parties=n)
            op = gemm.matmul if kind == "matmul" else jnp.multiply
            ref = (jaxmpc.matmul if kind == "matmul" else jaxmpc.mul)(jax.random.clone(k_op), x, y)
            d = FXP.ring_scale
            specs = dealer.beaver_specs(op, x.shape, y.shape, n)  # as jaxmpc.mul / matmul draw
            triple, trunc = dealer.with_truncation(k_op, specs, specs[2][1], n)
            a, b, c = dealer.complete_triple(op, triple)
            z = jaxmpc.beaver(None, x.shares, y.shares, op, transcript=tr, masks=triple)
            shares.update(y=y.shares, a=a, b=b, c=c)
        if kind == "div":
            r, r_msb, q = dealer.truncation_material(jax.random.clone(k_trunc), z.shape[1:], n, d)
            out = jaxmpc.truncate_shares(k_trunc, z, d, transcript=tr)
        else:
            # the protocol never forms the shares of the dealer's r (the opening is their sum):
            # uniform masks of their own, as truncation_material draws them
            r = ring.share_value(k_r, trunc[0], n)
            r_msb, q = dealer.complete_truncation(trunc, d)
            out = truncation.truncate_drawn(trunc, z, d, transcript=tr)
        shares.update(r=r, r_msb=r_msb, q=q)
        opened = dict(zip(("e", "f", "c") if kind != "div" else ("c",), tr))
        return out, ref.shares, z, shares, opened

    return jax.jit(jax.vmap(_twice(one), (0, None, None)))


def _plain_and_inputs(s: np.ndarray) -> tuple:
    """Plaintext inputs of every AND of msb on the ring values whose n shares are ``s[S, n, M]``,
    in transcript order: ``(x, y)`` of the compressors (n = 3) and of the generate word, then
    ``(x, (y_g, y_p))`` of each level of the carry tree (``(x, (y_g,))`` at the last), recomputed
    here in NumPy from the packing rule of ``binary._carry_tree``."""
    words = [s[:, i] for i in range(s.shape[1])]
    ands = []
    if len(words) == 3:  # one layer of 3:2 compressors
        a, b, c = words
        ands.append((np.stack([a, c], 1), np.stack([b, a ^ b], 1)))
        words = [a ^ b ^ c, ((a & b) ^ (c & (a ^ b))) << _U(1)]
    w0, w1 = words
    ands.append((w0, w1))
    g, p = (w0 & w1) << _U(1), (w0 ^ w1) << _U(1)
    tree = []
    for j in range(6):
        sh, m = _U(1 << j), _U(sum(1 << i for i in range(64) if not (i >> j) & 1))
        if g.shape[1] > 1:  # pair the words (a zero word after an odd count)
            if g.shape[1] % 2:
                g, p = (np.pad(v, ((0, 0), (0, 1))) for v in (g, p))

            def pack(v):
                return (v[:, 0::2] & m) ^ ((v[:, 1::2] & m) << sh)

            hi_g, hi_p, lo_g, lo_p = pack(g >> sh), pack(p >> sh), pack(g), pack(p)
        else:
            hi_g, hi_p, lo_g, lo_p = g >> sh, p >> sh, g, p
        tree.append((hi_p, (lo_g, lo_p) if j < 5 else (lo_g,)))
        g, p = hi_g ^ (hi_p & lo_g), hi_p & lo_p
    return ands, tree


@functools.cache
def _relu_fn(n: int):
    """One relu run per key: the public function's outputs, and the same run composed of
    binary.msb_from_keys + beaver with transcripts, and the recomputed dealer material."""
    n_csa = 2 * (n - 2)

    def one(key, xv):
        k_x, k_op = jax.random.split(key)
        x = jaxmpc.share(k_x, xv, FXP, n_parties=n)
        y_ref, d_ref = jaxmpc.relu(jax.random.clone(k_op), x)
        keys = jax.random.split(k_op, 1 + binary.MSB_KEYS)  # as relu splits its key
        k_mul, k_pre, k_b2a, k_tree = jax.random.clone(keys)
        tr: list = []
        bit = binary.msb_from_keys(keys[1:], (-x).shares, tr)
        y = jaxmpc.beaver(keys[0], bit, x.shares, jnp.multiply, transcript=tr)
        shape = x.shape
        pre = dealer.and_triple(k_pre, (n_csa + 1,) + shape, n)
        tree = dealer.and_triple(k_tree, (sum(binary.tree_words(x.size)),), n, fanout=2)
        levels, used = {}, 0  # the tree's triple, drawn once, is sliced level by level
        for j, k in enumerate(binary.tree_words(x.size)):
            levels.update({f"t{j}_{v}": m[..., used:used + k] for v, m in zip("abc", tree)})
            used += k
        r_bin, r_arith = dealer.random_bits(k_b2a, shape, n)
        a, b, c = dealer.beaver_triple(k_mul, jnp.multiply, shape, shape, n)
        shares = {"x": x.shares, "pre_a": pre[0], "pre_b": pre[1], "pre_c": pre[2],
                  **levels,
                  "r_bin": r_bin, "r_arith": r_arith, "a": a, "b": b, "c": c}
        opened = [[f"t{j}_e", f"t{j}g_f"] + ([f"t{j}p_f"] if j < 5 else []) for j in range(6)]
        names = (["csa_e", "csa_f"] if n > 2 else []) + ["g_e", "g_f"] + sum(opened, []) + [
            "b2a_c", "mul_e", "mul_f"]
        return (y, bit), (y_ref.shares, d_ref.shares), shares, dict(zip(names, tr, strict=True))

    return jax.jit(jax.vmap(_twice(one), (0, None)))


def _keys(seed: int, count: int = S):
    return jax.random.split(jaxmpc.key(seed), count)


# Two very different secrets per protocol, 2 elements (or 2x2): they differ in magnitude, in the
# relations between their elements (difference, sum) and, for relu, in sign (the bit relu computes);
# every value fits the encoding.
SECRETS = {
    "share": (np.zeros(2), np.array([-4.6e12, 1234.567])),
    "mul": ((np.zeros(2), np.zeros(2)), (np.array([-1000.5, 7.25]), np.array([3000.25, -0.001]))),
    "matmul": ((np.zeros((2, 2)), np.zeros((2, 2))), (np.array([[-1000.5, 999.0], [-7.25, 3.0]]),
                                                      np.array([[3000.25, 2000.0], [-0.001, -1e3]]))),
    "div": (np.zeros(2), np.array([-4e12, 1234.567])),
    "relu": (np.array([0.001, 1e6]), np.array([-5e5, -5e5])),
}
PROTOCOLS = list(SECRETS)


def _runs(protocol: str, n: int, keys, secret) -> dict:
    """One batch of runs (two calls each) of ``protocol``, checked against the public functions
    and the recomputed material."""
    if protocol == "share":
        first, second = _share_fn(n)(keys, secret)
        return _merge(_pack({"x": np.asarray(first)}, {}), _pack({"x": np.asarray(second)}, {}))
    if protocol == "relu":
        first, second = _np(_relu_fn(n)(keys, secret))
        return _merge(_check_relu(n, first), _check_relu(n, second))
    xv, yv = secret if protocol != "div" else (secret, secret)
    first, second = _np(_mul_fn(n, protocol)(keys, xv, yv))
    return _merge(_check_mul(n, protocol, first), _check_mul(n, protocol, second))


@functools.cache
def collect(protocol: str, n: int) -> tuple[dict, dict]:
    """Both secrets' runs of ``protocol`` for ``n`` parties. Cached: every test of a
    (protocol, n) shares one compile."""
    return tuple(_runs(protocol, n, _keys(1000 * n + 10 * PROTOCOLS.index(protocol) + i), secret)
                 for i, secret in enumerate(SECRETS[protocol]))


def _psum(a):
    return a.sum(axis=1, dtype=_U)


def _pxor(a):
    return np.bitwise_xor.reduce(a, axis=1)


def _check_mul(n, kind, out):
    got, ref, z, shares, opened = out
    np.testing.assert_array_equal(got, ref, err_msg=f"{kind}: the composition is not the public function")
    if kind != "div":  # the recomputed triple is the one the run used: e = x - a, f = y - b
        np.testing.assert_array_equal(opened["e"], _psum(shares["x"] - shares["a"]))
        np.testing.assert_array_equal(opened["f"], _psum(shares["y"] - shares["b"]))
    # ... and the truncation material too: c - (x + r) is the protocol's public shift, the same everywhere
    shift = opened["c"] - _psum(z) - _psum(shares["r"])
    assert (shift == shift.flat[0]).all(), kind
    return _pack(shares, opened)


def _check_relu(n, out):
    (y, bit), (y_ref, d_ref), shares, opened = out
    np.testing.assert_array_equal(y, y_ref, err_msg="relu: the composition is not jaxmpc.relu")
    np.testing.assert_array_equal(bit, d_ref)
    neg_x = (-shares["x"].astype(_U)).astype(_U)
    ands, tree = _plain_and_inputs(neg_x)
    triples = ([(shares["pre_a"][:, :, :2 * (n - 2)], shares["pre_b"][:, :, :2 * (n - 2)])] if n > 2 else [])
    triples += [(shares["pre_a"][:, :, -1], shares["pre_b"][:, :, -1])]
    names = (["csa"] if n > 2 else []) + ["g"]
    for name, (px, py), (a, b) in zip(names, ands, triples, strict=True):
        np.testing.assert_array_equal(opened[f"{name}_e"], px ^ _pxor(a), err_msg=name)
        np.testing.assert_array_equal(opened[f"{name}_f"], py ^ _pxor(b), err_msg=name)
    for j, (px, pys) in enumerate(tree):
        a, b = shares[f"t{j}_a"], shares[f"t{j}_b"]
        np.testing.assert_array_equal(opened[f"t{j}_e"], px ^ _pxor(a), err_msg=f"level {j}")
        for i, (name, py) in enumerate(zip("gp", pys)):
            np.testing.assert_array_equal(opened[f"t{j}{name}_f"], py ^ _pxor(b[:, :, i]), err_msg=f"level {j}")
    msb = _psum(neg_x) >> _U(63)
    np.testing.assert_array_equal(opened["b2a_c"], msb ^ (_pxor(shares["r_bin"]) & _U(1)))
    np.testing.assert_array_equal(opened["mul_e"], _psum(bit - shares["a"]))
    binary = {"pre_a", "pre_b", "pre_c", "r_bin", "b2a_c"} | {k for k in shares if k.startswith("t")} | {
        k for k in opened if k.endswith(("_e", "_f")) and not k.startswith("mul")}
    return _pack(shares, opened, binary)


# ---- tests ----------------------------------------------------------------------------------------
CASES = [(p, n) for p in PROTOCOLS for n in (2, 3)]


@pytest.mark.parametrize("protocol,n", CASES)
def test_coalition_views_do_not_depend_on_the_secret(protocol, n):
    """For every coalition of n-1 parties, the view for secret A and for secret B pass the
    two-sample tests (Bonferroni over all features); the controls below use the same runs."""
    run_a, run_b = collect(protocol, n)
    for honest, coalition in coalitions(n).items():
        p = view_pvalues(run_a, run_b, coalition)
        assert bonferroni(p) > ALPHA, (
            f"{protocol}, n={n}, honest party {honest}: the coalition's view depends on the secret "
            f"(min p = {p.min():.3g} over {p.size} tests)")


@pytest.mark.parametrize("protocol,n", CASES)
def test_control_honest_share_added_is_detected(protocol, n):
    """The same statistic on the view of ALL n parties (the view plus the honest party's shares)
    rejects: their combined input share is the secret."""
    run_a, run_b = collect(protocol, n)
    p = view_pvalues(run_a, run_b, tuple(range(n)))
    assert bonferroni(p) < 1e-30, (protocol, n, p.min())


def _unmask(run: dict) -> dict:
    """The run with one opening replaced by the value it has when the dealer's mask is zero: e + a
    for Beaver, c - r for truncation; for relu the first adder AND's e and f, which then are the two
    words w0, w1 with w0 + w1 = -x: each alone is uniform, only their sum leaks (a pair feature)."""
    shares, opened = run["shares"], dict(run["opened"])
    if "g_e" in opened:
        opened["g_e"] = opened["g_e"] ^ _pxor(shares["pre_a"][:, :, -1])[:, None]
        opened["g_f"] = opened["g_f"] ^ _pxor(shares["pre_b"][:, :, -1])[:, None]
    elif "e" in opened:
        opened["e"] = opened["e"] + _psum(shares["a"])
    else:
        opened["c"] = opened["c"] - _psum(shares["r"])
    return {**run, "opened": opened}


@pytest.mark.parametrize("protocol,n", [c for c in CASES if c[0] != "share"])
def test_control_unmasked_opening_is_detected(protocol, n):
    """The same statistic rejects, for every coalition, the views in which one opening is unmasked."""
    run_a, run_b = collect(protocol, n)
    for honest, coalition in coalitions(n).items():
        p = view_pvalues(_unmask(run_a), _unmask(run_b), coalition)
        assert bonferroni(p) < 1e-30, (protocol, n, honest, p.min())


class _LeakyRing:
    """:mod:`jaxmpc.core.ring` with a leaky ``draw``, standing in for the module that one party of the
    simulation (the dealer, or the owner of an input) draws its randomness through.

    Leaks: ``"reuse"`` (each array's element 1 gets element 0's words: one mask for two
    elements), ``"offset"`` (element 1 is element 0 plus a public constant: the difference of the
    two masked values is public), ``"zero"`` (no masks at all), ``"cross"`` (a draw with the same
    specs as an earlier one in the same program gets its key: two protocol calls share masks)."""

    LEAKS = ("reuse", "offset", "zero", "cross")

    def __init__(self, leak: str):
        self.leak, self.first_key = leak, {}

    def __getattr__(self, name):
        return getattr(ring, name)

    def draw(self, key, n_parties, *specs, dtype=ring.DTYPE):
        if self.leak == "cross":  # past JAX's key-reuse checker: a new key with the first key's bits
            data = self.first_key.setdefault(specs, jax.random.key_data(key))
            key = jax.random.wrap_key_data(data, impl=jax.random.key_impl(key))
        out = ring.draw(key, n_parties, *specs, dtype=dtype)
        return [self._corrupt(a, holders is ring.DEALER) for a, (holders, _) in zip(out, specs)]

    def _corrupt(self, a, dealer_only: bool):
        if self.leak == "zero":
            return jnp.zeros_like(a)
        flat = a.reshape((1, -1) if dealer_only else (a.shape[0], -1))
        if self.leak not in ("reuse", "offset") or flat.shape[1] < 2:
            return a
        c = ring.word(0x5DEECE66D if self.leak == "offset" else 0, a)
        return flat.at[:, 1].set(flat[:, 0] + c).reshape(a.shape)


@pytest.mark.parametrize("leak", _LeakyRing.LEAKS)
@pytest.mark.parametrize("protocol,n", CASES)
def test_control_leaky_randomness_is_detected(monkeypatch, protocol, n, leak):
    """Real runs of every protocol with leaky randomness (the dealer's, or for share the input
    owner's) are rejected at every seed tried: some coalition's view then depends on the secret,
    through a relation between elements (reuse, offset), between two calls (cross) or directly
    (zero masks). The programs are traced with the leak in place; 512 runs per secret suffice."""
    module = family if protocol == "share" else dealer  # the modules that draw the masks
    monkeypatch.setattr(module, "ring", _LeakyRing(leak))
    fns = (_share_fn, _mul_fn, _relu_fn)
    for fn in fns:
        fn.cache_clear()  # traced again, with the leak
    try:
        for seed in (1, 2, 3):
            runs = [_runs(protocol, n, _keys(10 * seed + i, 512), secret)
                    for i, secret in enumerate(SECRETS[protocol])]
            p = min(bonferroni(view_pvalues(*runs, c)) for c in coalitions(n).values())
            assert p < 1e-12, (protocol, n, leak, seed, p)
    finally:
        monkeypatch.undo()
        for fn in fns:
            fn.cache_clear()  # later tests trace the honest protocols again


@functools.cache
def _scheme_fn(n: int, scheme: str):
    """One division by 7 per key with the truncation scheme ``scheme``: the shares of x and of the
    dealer's material that the coalition holds (``pair``: the shares of r' = floor(r/7)), and the
    opening."""
    def one(key, xv):
        k_x, k_t = jax.random.split(key)
        x = jaxmpc.share(k_x, xv, FXP, n_parties=n)
        tr: list = []
        truncation.truncate_shares(k_t, x.shares, jnp.uint64(7), scheme, transcript=tr)
        shares = {"x": x.shares}
        if scheme == "pair":  # the material as truncate_shares draws it
            r, m_q = ring.draw(jax.random.clone(k_t), n, *dealer.pair_specs(x.shape, n))
            shares["q"] = ring.shares_from_mask(r // jnp.uint64(7), m_q)
        return shares, {"c": tr[0]}

    return jax.jit(jax.vmap(_twice(one), (0, None)))


@pytest.mark.parametrize("n", [2, 3])
def test_pair_truncation_is_private_and_fixed_mask_is_rejected(n):
    """``pair`` truncation passes the coalition test; ``fixed-mask`` (the constant pair r = r' = 0 of
    Falcon's and Piranha's released code) opens x itself and must be rejected by the same statistic."""
    def runs(scheme):
        out = []
        for i, secret in enumerate(SECRETS["div"]):
            first, second = _np(_scheme_fn(n, scheme)(_keys(5000 + 10 * n + i), secret))
            out.append(_merge(_pack(*first), _pack(*second)))
        return out

    honest = runs("pair")
    for coalition in coalitions(n).values():
        assert bonferroni(view_pvalues(*honest, coalition)) > ALPHA, ("pair", n, coalition)
    leaky = runs("fixed-mask")
    assert max(bonferroni(view_pvalues(*leaky, c)) for c in coalitions(n).values()) < 1e-30
