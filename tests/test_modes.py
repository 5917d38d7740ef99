"""Simulation modes of Beaver's protocol: the fast path is bit-identical to the faithful protocol,
and the ideal functionality has the protocol's output distribution."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc.core import gemm, ring


@functools.lru_cache(maxsize=None)
def _beaver_all_modes(n_parties: int, kind: str):
    op = {"mul": jnp.multiply, "matmul": gemm.matmul}[kind]

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


@pytest.mark.parametrize("n_parties", [2, 3])
def test_training_step_is_bit_identical_in_protocol_and_faithful_modes(n_parties):
    """A whole training step (Beaver products, ReLU, truncations, SGD): protocol mode gives the
    faithful mode's bits. (Once a product is truncated, its individual shares are dead code: the
    truncation opens their sum, so XLA may drop them; the outputs are the same bits regardless.)"""
    from jaxmpc import nn
    from jaxmpc.nn import losses, optim, training

    fxp = jaxmpc.FixedPoint(2, 16)
    rng = np.random.default_rng(n_parties)
    xb, yb = rng.uniform(-1, 1, (5, 4)), rng.uniform(-1, 1, (5, 3))
    key_data = jax.random.key_data(jax.random.split(jax.random.key(60 + n_parties), 6))

    def run(mode):
        k = jax.random.wrap_key_data(key_data)  # the same keys for both modes, on purpose
        net = nn.serial(nn.Linear(4, 8, mode=mode), nn.ReLU(mode=mode), nn.Linear(8, 3, mode=mode))
        params = jaxmpc.share(k[0], net.init(k[1]), fxp, n_parties)
        x, y = jaxmpc.share(k[2], xb, fxp, n_parties), jaxmpc.share(k[3], yb, fxp, n_parties)
        opt = optim.sgd(0.1, key=k[4], momentum=0.9)
        return jax.jit(lambda kk, p, s: training.step(kk, net, losses.mse, opt, p, s, x, y))(
            k[5], params, opt.init(params))

    faithful, fast = run("faithful"), run("protocol")
    def bits(a):
        return np.asarray(jax.random.key_data(a) if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key) else a)

    for a, b in zip(jax.tree_util.tree_leaves(faithful), jax.tree_util.tree_leaves(fast)):
        np.testing.assert_array_equal(bits(a), bits(b))
