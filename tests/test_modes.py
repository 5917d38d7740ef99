"""Simulation modes of Beaver's protocol: the fast path is bit-identical to the faithful protocol,
and the ideal functionality has the protocol's output distribution."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc import ring


@functools.lru_cache(maxsize=None)
def _beaver_all_modes(n_parties: int, kind: str):
    op = {"mul": jnp.multiply, "matmul": ring.matmul}[kind]

    @functools.partial(jax.jit, static_argnums=3)
    def f(key, x, y, mode):
        return jaxmpc.beaver(key, x, y, op, mode=mode)

    return f


@pytest.mark.parametrize("n_parties", [2, 3, 5])
@pytest.mark.parametrize("kind,shapes", [("mul", ((4, 3), (1, 3))), ("matmul", ((4, 3), (3, 5))),
                                         ("matmul", ((2, 4, 3), (3, 2)))])
def test_fast_path_is_bit_identical_to_faithful(n_parties, kind, shapes):
    k_x, k_y, k_b = jax.random.split(jax.random.key(n_parties), 3)
    x = ring.random(k_x, (n_parties,) + shapes[0])
    y = ring.random(k_y, (n_parties,) + shapes[1])
    f = _beaver_all_modes(n_parties, kind)
    # the same dealer key for both modes (copied on purpose: same dealer material)
    key = jax.random.key_data(k_b)
    faithful = f(jax.random.wrap_key_data(key), x, y, "faithful")
    fast = f(jax.random.wrap_key_data(key), x, y, "protocol")
    np.testing.assert_array_equal(np.asarray(faithful), np.asarray(fast))
    assert faithful.shape[0] == n_parties


@pytest.mark.parametrize("n_parties", [2, 3])
def test_ideal_mode_matches_protocol_distribution(n_parties):
    """Errors of matmul + dealer truncation: a chi-square test on the per-unit error counts."""
    fxp = jaxmpc.FixedPoint(10, 3)
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-2, 2, (64, 8)), rng.uniform(-2, 2, (8, 64))

    @functools.partial(jax.jit, static_argnums=1)
    def errors(key, mode):
        k_a, k_b, k_m = jax.random.split(key, 3)
        x, y = jaxmpc.share(k_a, a, fxp, n_parties), jaxmpc.share(k_b, b, fxp, n_parties)
        exact = jnp.matmul(jaxmpc.reveal(x), jaxmpc.reveal(y))
        return jnp.round((jaxmpc.reveal(jaxmpc.matmul(k_m, x, y, mode=mode)) - exact) * 1000)

    k_p, k_i = jax.random.split(jax.random.key(7))
    e_p, e_i = np.asarray(errors(k_p, "protocol")), np.asarray(errors(k_i, "ideal"))
    assert np.abs(e_p).max() <= 2 and np.abs(e_i).max() <= 2
    values = np.arange(-2, 3)
    cp = np.array([(e_p == v).sum() for v in values])
    ci = np.array([(e_i == v).sum() for v in values])
    keep = (cp + ci) > 0
    expected = (cp + ci)[keep] / 2
    chi2 = (((cp[keep] - expected) ** 2 + (ci[keep] - expected) ** 2) / expected).sum()
    assert chi2 < 20.5, (cp, ci)  # 99.9% quantile of chi-square with <= 4 degrees of freedom
    assert (cp != ci).any()  # independent randomness: the two modes are not the same bits


def test_unknown_mode_is_rejected():
    x = jaxmpc.share(jax.random.key(0), [1.0], jaxmpc.FixedPoint(10, 3))
    with pytest.raises(jaxmpc.ProtocolError, match="mode"):
        jaxmpc.mul(jax.random.key(1), x, x, mode="fast")
