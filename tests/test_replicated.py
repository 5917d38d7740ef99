r"""The replicated family: each single party's view is independent of the secret, leaky randomness
is detected, the costs are ABY3's, and the options are checked.

Honest majority: the adversary is ONE party. Party :math:`i`'s view of a run is what it holds and
receives (:mod:`jaxmpc.protocols.replicated`):

- its components :math:`i, i+1` of every sharing (inputs, outputs) and the streams of its two
  pairwise keys :math:`k_i, k_{i+1}` (the zero-sharing's, the truncation's :math:`r` where it holds
  :math:`k_2`), recomputed from the run's keys and checked to be the randomness used;
- every message it receives, recorded by the protocols' ``transcript`` lists (the product's
  :math:`z_{i+1}`; party 0 also gets the truncation's :math:`y_1`);
- each message's *residual*: the message minus what party :math:`i` would predict for it if the
  secret were zero (from its components, with the component it lacks set so that the secret is 0,
  and its own keys' streams). Honestly it is masked by the stream of the key party :math:`i` lacks,
  so uniform; when that mask is reused (two elements, or two calls) the residuals' difference is a
  function of the secret, which the pair features of ``tests/test_privacy.py`` (``u - v``) expose.

The statistics are ``tests/test_privacy.py``'s (two-sample tests per feature and per pair of
features, Bonferroni). Controls: the view of all three parties, and real runs with a reused
zero-sharing or truncation mask (each element's mask equal to the previous one's, or one call's
masks equal to another call's), must be rejected.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc.core import ring
from jaxmpc.errors import ProtocolError
from jaxmpc.protocols import interface
from jaxmpc.protocols.replicated import binary, mult, prf, truncation
from test_privacy import ALPHA, _LeakyRing, _merge, _np, _twice, bonferroni, view_pvalues

FXP = jaxmpc.FixedPoint(10, 3)
S = 2048
_U = np.uint64
SECRETS = {
    "mul": ((np.zeros(2), np.zeros(2)), (np.array([-1000.5, 7.25]), np.array([3000.25, -0.001]))),
    "div": ((np.zeros(2), np.zeros(2)), (np.array([-4e12, 1234.567]), np.zeros(2))),
}


def _share(key, v):
    return jaxmpc.share(key, v, FXP, n_parties=3, protocol="replicated")


@functools.cache
def _run_fn(kind: str):
    """One mul (with its truncation) or div_public by 7 per key: the public function's output and
    the same run composed of the family's internals, with transcripts and recomputed streams."""
    def one(key, xv, yv):
        k_x, k_y, k_op = jax.random.split(key, 3)
        x = _share(k_x, xv)
        shares, tr = {"x": x.shares}, []
        if kind == "mul":
            y = _share(k_y, yv)
            ref = jaxmpc.mul(jax.random.clone(k_op), x, y)
            k_mul, k_trunc = jax.random.split(k_op)  # as mult.product splits its key
            (r,) = prf.streams(jax.random.clone(k_mul), x.shape)
            z = mult.reshare_product(k_mul, x.shares, y.shares, jnp.multiply, transcript=tr)
            d = FXP.ring_scale
            shares.update(y=y.shares, r=r)
        else:
            ref = jaxmpc.div_public(jax.random.clone(k_op), x, 7)
            k_trunc, z, d = k_op, x.shares, jnp.uint64(7)
        r2 = prf.stream(jax.random.clone(k_trunc), 2, x.shape)
        out = truncation.truncate_shares(k_trunc, z, d, transcript=tr)
        shares.update(r2=jnp.stack([jnp.zeros_like(r2), jnp.zeros_like(r2), r2]), out=out)
        return out, ref.shares, z, d, shares, tr

    return jax.jit(jax.vmap(_twice(one), (0, None, None)))


def _signed(v):
    return v.astype(np.int64)


def _ceil_div(b: np.ndarray, d: int) -> np.ndarray:
    """``ceil(b / d)`` of the signed view of uint64 ``b``, as the protocol computes it (uint64)."""
    return (-((-_signed(b)) // np.int64(d))).astype(_U)


def _views(kind: str, out) -> dict:
    """Party i's view of one call (``i`` -> a run of ``tests/test_privacy.py``'s format), after
    checking that the composition is the public function and that the streams are the ones used."""
    got, ref, z, d, shares, tr = out
    np.testing.assert_array_equal(got, ref, err_msg=f"{kind}: the composition is not the public function")
    d = int(np.asarray(d).reshape(-1)[0])
    msgs = {}
    if kind == "mul":
        zt, y1 = tr
        np.testing.assert_array_equal(zt, z)
        x, y, r = shares["x"], shares["y"], shares["r"]
        np.testing.assert_array_equal(z.sum(axis=1, dtype=_U), x.sum(axis=1, dtype=_U) * y.sum(axis=1, dtype=_U))
        for i in range(3):
            j, k = (i + 1) % 3, (i + 2) % 3
            xz, yz = x.copy(), y.copy()  # the component party i lacks, set so that the secret is 0
            xz[:, k] = -(x[:, i] + x[:, j])
            yz[:, k] = -(y[:, i] + y[:, j])
            pred = xz[:, j] * (yz[:, j] + yz[:, k]) + xz[:, k] * yz[:, j] + r[:, j]
            msgs[i] = {"z": z[:, j], "z_res": z[:, j] - pred}
    else:
        (y1,) = tr
        msgs = {i: {} for i in range(3)}
    # the truncation's message y_1 = ceil((z_1 + z_2)/d) - r2 goes to party 0 (it holds z_0, z_1)
    np.testing.assert_array_equal(y1, _ceil_div(z[:, 1] + z[:, 2], d) - shares["r2"][:, 2])
    msgs[0] = {**msgs[0], "t": y1, "t_res": y1 - _ceil_div(-z[:, 0], d)}
    own = {k: v for k, v in shares.items()}
    if kind == "mul":
        own["z"] = z  # the product's components: party i holds z_i and receives z_{i+1}
    return {i: {"shares": {k: v.reshape(v.shape[:2] + (-1,)) for k, v in own.items()},
                "opened": {k: v.reshape(v.shape[0], -1) for k, v in msgs[i].items()},
                "binary": set()} for i in range(3)}


def _collect(kind: str, seed: int, count: int = S):
    """Both secrets' views of ``kind``: ``[run_a, run_b]``, each ``{party: run}`` of two calls."""
    out = []
    for i, (xv, yv) in enumerate(SECRETS[kind]):
        keys = jax.random.split(jaxmpc.key(seed + i), count)
        first, second = _np(_run_fn(kind)(keys, xv, yv))
        a, b = _views(kind, first), _views(kind, second)
        out.append({p: _merge(a[p], b[p]) for p in range(3)})
    return out


@functools.cache
def collect(kind: str):
    return _collect(kind, 7000 + 10 * list(SECRETS).index(kind))


HOLDS = {i: (i, (i + 1) % 3) for i in range(3)}  # party i holds components (and keys) i and i+1


@pytest.mark.parametrize("kind", list(SECRETS))
def test_single_party_views_do_not_depend_on_the_secret(kind):
    run_a, run_b = collect(kind)
    for party, held in HOLDS.items():
        p = view_pvalues(run_a[party], run_b[party], held)
        assert bonferroni(p) > ALPHA, (kind, party, p.min(), p.size)


@pytest.mark.parametrize("kind", list(SECRETS))
def test_control_all_components_are_detected(kind):
    """Control: the same statistic on all three components (two colluding parties' view) rejects."""
    run_a, run_b = collect(kind)
    assert bonferroni(view_pvalues(run_a[0], run_b[0], (0, 1, 2))) < 1e-30


class _LeakyStreams(_LeakyRing):
    """:class:`tests.test_privacy._LeakyRing` for the pairwise-key streams of
    :mod:`jaxmpc.protocols.replicated.prf`, which also draw single rows with ``ring.random``."""

    def random(self, key, shape, dtype=ring.DTYPE):
        if self.leak == "cross":
            data = self.first_key.setdefault(("random", tuple(shape)), jax.random.key_data(key))
            key = jax.random.wrap_key_data(data, impl=jax.random.key_impl(key))
        a = ring.random(key, shape, dtype)
        if self.leak == "reuse" and a.size >= 2:
            a = a.reshape(-1).at[1].set(a.reshape(-1)[0]).reshape(a.shape)
        return a


@pytest.mark.parametrize("kind,leak", [("mul", "reuse"), ("mul", "cross"), ("div", "reuse")])
def test_control_reused_zero_sharing_is_detected(monkeypatch, kind, leak):
    """Real runs with a reused zero-sharing (mul) or truncation mask (div), one mask for two
    elements or for two calls: some party's view depends on the secret, at every seed tried."""
    monkeypatch.setattr(prf, "ring", _LeakyStreams(leak))
    _run_fn.cache_clear()
    try:
        for seed in (1, 2):
            run_a, run_b = _collect(kind, 100 * seed, 512)
            p = min(bonferroni(view_pvalues(run_a[i], run_b[i], HOLDS[i])) for i in range(3))
            assert p < 1e-12, (kind, leak, seed, p)
    finally:
        monkeypatch.undo()
        _run_fn.cache_clear()


# ---- cost, options, failures ------------------------------------------------------------------
def _sds(shape, fxp=FXP):
    p = interface.protocol("replicated", 3, 64)
    return jaxmpc.Shared(jax.ShapeDtypeStruct((3,) + tuple(shape), jnp.uint64), fxp, p)


def test_a_multiplication_is_one_round_of_8m_bytes_per_party():
    """The issue's target: a replicated product of m elements on Z_2^64 is 1 round and 8m bytes
    sent per party (each party sends one ring element per element to one neighbour); the
    truncation after it is 1 round of 8m bytes sent by one party."""
    m = 1000
    integer = jaxmpc.cost(jaxmpc.mul, jax.random.key(0), _sds((m,)), _sds((m,), None))
    assert (integer.rounds, integer.bytes_per_party, integer.dealer_bytes_per_party) == (1, 8 * m, 0)
    t = jaxmpc.trace.accounting.tally(jaxmpc.mul, jax.random.key(0), _sds((m,)), _sds((m,)))
    assert t.ops["mul"].bytes_total == 3 * 8 * m and t.ops["truncate/share"].bytes_total == 8 * m
    assert (t.ops["truncate/share"].rounds, t.ops["truncate/share"].bytes_per_party) == (1, 8 * m)
    opened = jaxmpc.cost(jaxmpc.reveal, _sds((m,)))
    assert (opened.rounds, opened.bytes_per_party) == (1, 8 * m)
    msb = jaxmpc.cost(jaxmpc.msb, jax.random.key(0), _sds((m,)))
    assert msb.rounds == binary.MSB_ROUNDS and msb.dealer_bytes_per_party == 0


def test_a_multiplication_on_z32_is_one_round_of_4m_bytes_per_party():
    """On Z_2^32 (uint32 components) the same product is 1 round of 4m bytes per party, its
    truncation 4m bytes from one party, and msb one round shorter (a 5-level carry tree)."""
    m = 1000
    p = interface.protocol("replicated", 3, 32)
    fxp = jaxmpc.FixedPoint(2, 10).on_ring(32)

    def sds(f=fxp):
        return jaxmpc.Shared(jax.ShapeDtypeStruct((3, m), jnp.uint32), f, p)

    integer = jaxmpc.cost(jaxmpc.mul, jax.random.key(0), sds(), sds(None))
    assert (integer.rounds, integer.bytes_per_party, integer.dealer_bytes_per_party) == (1, 4 * m, 0)
    t = jaxmpc.trace.accounting.tally(jaxmpc.mul, jax.random.key(0), sds(), sds())
    assert t.ops["mul"].bytes_total == 3 * 4 * m and t.ops["truncate/share"].bytes_per_party == 4 * m
    msb = jaxmpc.cost(jaxmpc.msb, jax.random.key(0), sds())
    assert msb.rounds == binary.msb_rounds(3, 32) == binary.MSB_ROUNDS - 1


def test_options_are_checked_before_work():
    k = jax.random.key(0)
    with pytest.raises(ProtocolError, match="exactly 3 parties|among 3"):
        jaxmpc.share(k, [1.0], FXP, n_parties=2, protocol="replicated")
    with pytest.raises(ProtocolError, match="3"):
        jaxmpc.share(k, [1.0], FXP, n_parties=5, protocol="replicated")
    x = _share(k, np.ones(3))
    for t in ("dealer", "pair", "local", "nonsense"):
        with pytest.raises(ProtocolError, match="share"):
            jaxmpc.mul(jax.random.key(1), x, x, truncation=t)
    with pytest.raises(ProtocolError, match="no dealer"):
        jaxmpc.run.config.check(n_parties=3, truncation="dealer", protocol="replicated")
    jaxmpc.run.config.check(n_parties=3, truncation="default", protocol="replicated")
    assert interface.family("replicated").resolve_truncation("default") == "share"
    assert interface.family("additive").resolve_truncation("default") == "dealer"


def test_truncation_failures_are_counted_and_predicted():
    """Share truncation of values near 2^62 fails with probability |x| / 2^64 (a wrap of the
    2-out-of-2 split), and jaxmpc.trace.diagnostics counts the failures."""
    v = np.full((4096,), 2**61, np.int64)  # predicted failure rate 2^61 / 2^64 = 1/8

    def run(key):
        k1, k2 = jax.random.split(key)
        x = jaxmpc.share(k1, v, None, n_parties=3, protocol="replicated")
        return jaxmpc.reveal(jaxmpc.truncate(k2, x, jnp.uint64(1000)))

    report = jaxmpc.diagnostics.run(run)(jax.random.key(3))
    got, stats = report
    off = np.asarray(got) - v // 1000  # in integers (v / 1000 is not exact in float64)
    wrong = (off < 0) | (off > 1)
    rate = float(truncation.failure_rate(2**61))
    assert rate == 1 / 8 and abs(wrong.mean() - rate) < 0.02, wrong.mean()
    assert int(stats["truncate/share"].failures) == int(wrong.sum())
