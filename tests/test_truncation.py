"""The truncation schemes of the additive family against their stated behaviour.

``exact``: round half up, the same in every run; ``pair``: catastrophic with probability exactly
|x| / 2^64 (measured over vmapped keys, counted by the diagnostics), unbiased otherwise;
``fixed-mask``: the floor, with the secret in its opening (insecure by design); every scheme's
product and division within its bound. The conformance suite runs each scheme through the public
operations at 2, 3 and 5 parties; this file checks what distinguishes them.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc.core import ring
from jaxmpc.protocols.additive import binary, truncation
from jaxmpc.protocols.additive.family import FAMILY

_U = jnp.uint64


@functools.cache
def _truncate(t: str, n: int):
    """jit(vmap over keys) of: share the ring values v, truncate by d, open. Returns (result, opening)."""
    def one(key, v, d):
        k_share, k_trunc = jax.random.split(key)
        shares = ring.share_value(k_share, ring.const(v), n)
        tr: list = []
        out = truncation.truncate_shares(k_trunc, shares, d, t, transcript=tr)
        return ring.to_signed(ring.party_sum(out)), ring.to_signed(tr[0])
    return jax.jit(jax.vmap(one, (0, None, None)))


def _keys(seed, count):
    return jax.random.split(jaxmpc.key(seed), count)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("d", [3, 7, 1000, 2**16, 2**20 + 7])
def test_exact_rounds_half_up_in_every_run(n, d):
    base = np.array([0, 1, -1, 5, -5, 2**40, -(2**40), 2**61 - 3 * d, -(2**61) + 3 * d], np.int64)
    v = np.concatenate([base, base + d // 2, base + d // 2 - 1, base - d // 2, base + d - 1])
    got, _ = _truncate("exact", n)(_keys(d, 16), jnp.asarray(v), _U(d))
    want = np.floor_divide(v + d // 2, d)
    assert (np.asarray(got) == want[None]).all()


def test_exact_products_are_exact_for_exact_inputs():
    """PySyft's expectations: [[1, 2], [3, 4]] @ itself = [[7, 10], [15, 22]] and 4 * 4 = 16 at base 10
    precision 3, exactly (stochastic rounding gives 22.001 or 15.999 in some runs)."""
    fxp = jaxmpc.FixedPoint(10, 3)
    for seed in range(4):
        k = jax.random.split(jaxmpc.key(seed), 3)
        a = jaxmpc.share(k[0], [[1.0, 2.0], [3.0, 4.0]], fxp)
        four = jaxmpc.share(k[1], 4.0, fxp)
        k_mm, k_mul = jax.random.split(k[2])
        assert np.array_equal(jaxmpc.reveal(jaxmpc.matmul(k_mm, a, a, truncation="exact")),
                              [[7.0, 10.0], [15.0, 22.0]])
        assert jaxmpc.reveal(jaxmpc.mul(k_mul, four, four, truncation="exact")) == 16.0


@pytest.mark.parametrize("n", [2, 3])
def test_pair_fails_at_the_predicted_rate_and_the_diagnostics_count_it(n):
    trials, d = 1 << 14, 1 << 16
    v = np.array([2**58, -(2**58), 2**20], np.int64)  # rates 1/64, 1/64, 2^-44
    keys = _keys(7 + n, trials)
    got, _ = _truncate("pair", n)(jax.random.clone(keys), jnp.asarray(v), _U(d))  # the same runs twice
    failures = (np.abs(np.asarray(got) - v / d) > 1).sum(axis=0)
    p = truncation.pair_failure_rate(v)
    sd = np.sqrt(trials * p * (1 - p))
    assert np.all(np.abs(failures - trials * p) <= 5 * sd + 1e-9), (failures, trials * p)
    assert failures[2] == 0 and failures[0] > 0
    # the diagnostics count the same catastrophic failures, per run
    _, report = jax.jit(jax.vmap(jaxmpc.diagnostics.run(lambda k: _truncate_once(k, v, d, n))))(keys)
    assert int(np.sum(report["truncate/pair"].failures)) == failures.sum()


def _truncate_once(key, v, d, n):
    k_share, k_trunc = jax.random.split(key)
    shares = ring.share_value(k_share, ring.const(jnp.asarray(v)), n)
    return truncation.truncate_shares(k_trunc, shares, _U(d), "pair")


def test_pair_is_unbiased_and_within_one_unit_for_small_values():
    trials, d = 1 << 13, 7
    v = np.array([3, -3, 1000, -1001, 2**30 + 5], np.int64)
    got, opened = _truncate("pair", 2)(_keys(11, trials), jnp.asarray(v), _U(d))
    err = np.asarray(got) - v / d
    assert np.abs(err).max() < 1
    se = err.std(axis=0) / np.sqrt(trials)
    assert np.all(np.abs(err.mean(axis=0)) < 5 * se + 1e-12), err.mean(axis=0)
    assert len(np.unique(np.asarray(opened)[:, 0])) > trials - 4  # the opening is masked: all distinct


def test_fixed_mask_is_the_floor_and_opens_the_secret():
    """The released-code behaviour of Falcon / Piranha: error-free and, as its docstring says,
    private in nothing (the opening is the secret itself, in every run)."""
    v = np.array([-2**40 - 1, -7, -1, 0, 6, 7, 2**40 + 3], np.int64)
    got, opened = _truncate("fixed-mask", 3)(_keys(3, 4), jnp.asarray(v), _U(7))
    assert (np.asarray(got) == np.floor_divide(v, 7)[None]).all()
    assert (np.asarray(opened) == v[None]).all()


def test_costs_match_the_formulas():
    x = jaxmpc.share(jaxmpc.key(0), np.arange(6.0), jaxmpc.FixedPoint(2, 16), n_parties=3)
    p = x.protocol
    for t in ("dealer", "pair", "fixed-mask", "exact"):
        report = jaxmpc.cost(lambda k, v: jaxmpc.div_public(k, v, 5, truncation=t), jaxmpc.key(1), x)
        rounds, sent, dealt = FAMILY.kernels["truncate"].formula(p, 6, t)
        assert (report.rounds, report.bytes_per_party, report.dealer_bytes_per_party) == (rounds, sent, dealt), t
    assert FAMILY.kernels["truncate"].formula(p, 6, "exact")[0] == 1 + binary.msb_rounds(3)


def test_unknown_and_unsupported_schemes_raise_before_any_work():
    x = jaxmpc.share(jaxmpc.key(0), np.ones(2), jaxmpc.FixedPoint(10, 3), n_parties=3)
    with pytest.raises(jaxmpc.ProtocolError, match=r"one of \('dealer', 'local', 'pair', 'fixed-mask', 'exact'\)"):
        jaxmpc.mul(jaxmpc.key(1), x, x, truncation="probabilistic")
    with pytest.raises(jaxmpc.ProtocolError, match="only correct for 2 parties"):
        jaxmpc.mul(jaxmpc.key(1), x, x, truncation="local")
