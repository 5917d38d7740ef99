"""jaxmpc.lanes.vmap: the same values as jax.vmap, bit for bit, with the run axis innermost."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc import config, lanes
from jaxmpc.tasks import tutorial


def same_keys(data, impl=None):
    """A fresh key array from the same key data (the key-reuse checker tracks each array)."""
    return jax.random.wrap_key_data(data, impl=impl or jaxmpc.core.keys.SPLITMIX64)


def assert_same(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("n_parties,base,truncation", [(2, 10, "dealer"), (3, 2, "dealer"),
                                                       (2, 10, "local")])
def test_seed_runs_are_bit_identical(n_parties, base, truncation):
    run = functools.partial(tutorial.run, base=base, n_parties=n_parties, iterations=3,
                            truncation=truncation)
    data = jax.random.key_data(jax.random.split(jaxmpc.key(3), 4))
    precisions = jnp.array([2, 3, 4, 3] if base == 10 else [8, 12, 16, 10], jnp.int32)
    got = config.jit(lanes.vmap(run))(same_keys(data), precisions)
    want = config.jit(jax.vmap(run))(same_keys(data), precisions)
    assert_same(got, want)
    np.testing.assert_allclose(np.asarray(got[:, 0]), tutorial.plaintext_losses(3)[0], atol=0.05)


def test_five_party_protocols_are_bit_identical():
    fxp = jaxmpc.FixedPoint(2, 12)
    xv = np.array([[0.5, -1.25, 3.0], [-0.75, 2.0, 0.125]])

    def run(key, scale):
        k = jax.random.split(key, 5)
        x, y = jaxmpc.share(k[0], xv * scale, fxp, 5), jaxmpc.share(k[1], xv.T, fxp, 5)
        z, d = jaxmpc.relu(k[3], jaxmpc.matmul(k[2], x, y))
        w = jaxmpc.mul(k[4], z, z)
        return w.shares, d.shares, jaxmpc.reveal(w)

    data = jax.random.key_data(jax.random.split(jaxmpc.key(5), 3))
    scales = jnp.array([1.0, -0.5, 0.25])
    assert_same(jax.jit(lanes.vmap(run))(same_keys(data), scales),
                jax.jit(jax.vmap(run))(same_keys(data), scales))


def test_mlp_training_step_is_bit_identical():
    """A 6-8-3 MLP step (Linear, ReLU, MSE, SGD with momentum) per run, over keys and precisions:
    float64 GEMMs, conditionals and optax's update go through the rules or JAX's own."""
    from jaxmpc import nn
    from jaxmpc.nn import losses, optim
    net = nn.serial(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    rng = np.random.default_rng(4)
    xb, yb = rng.uniform(0, 1, (4, 6)), np.eye(3)[rng.integers(0, 3, 4)]
    init = net.init(jax.random.key(0))

    def run(key, precision):
        k = jax.random.split(key, 5)
        fxp = jaxmpc.FixedPoint(2, precision)
        params = jaxmpc.share(k[0], init, fxp)
        x, y = jaxmpc.share(k[1], xb, fxp), jaxmpc.share(k[2], yb, fxp)
        opt = optim.sgd(0.1, key=k[3], momentum=0.9)
        params, _, loss = jaxmpc.nn.training.step(k[4], net, losses.mse, opt, params, opt.init(params), x, y)
        shared = jax.tree_util.tree_leaves(params, is_leaf=lambda v: isinstance(v, jaxmpc.Shared))
        return loss, [p.shares for p in shared]

    data = jax.random.key_data(jax.random.split(jaxmpc.key(7), 3))
    precisions = jnp.array([12, 16, 20], jnp.int32)
    assert_same(config.jit(lanes.vmap(run))(same_keys(data), precisions),
                config.jit(jax.vmap(run))(same_keys(data), precisions))


def _primitives(key, x, m, shared):
    """Every rule of lanes, and some fallbacks, on one run's values."""
    u = jax.lax.bitcast_convert_type(x, jnp.uint64)             # same width: rule
    halves = jax.lax.bitcast_convert_type(u, jnp.uint32)        # width change: fallback
    a = (u[:1] * u) ^ (u >> jnp.uint64(3)) + jnp.uint64(7)      # size-1 broadcasting, literals
    b = jnp.where(a[0, 0] > a[1, 1], a, u)                      # scalar predicate
    c = jnp.where(a > u, a, jnp.uint64(1))                      # array predicate
    d = jnp.concatenate([b, shared, c[:, ::-1]], axis=1)        # unbatched operand, reversed
    e = jnp.stack([d, d * d], axis=1).reshape(2, -1)[:, 1:7:2]  # stack, reshape, strided slice
    f = jnp.transpose(e).sum(axis=0) + jnp.max(e)               # transpose, reductions
    g = jnp.einsum("bij,bjk->bik", m, m.transpose(0, 2, 1) + jnp.uint64(1))  # int dot_general
    h = m.astype(jnp.float64) @ m[0].astype(jnp.float64).T                   # float: fallback
    i = jnp.cumsum(u, axis=1)                                                # fallback primitive

    def step(carry, row):
        carry = carry * jnp.uint64(3) + row
        return carry, carry ^ row

    j = jax.lax.scan(step, jnp.zeros(3, jnp.uint64), d[:, :3])               # unbatched init
    k1, k2, k3 = jax.random.split(key, 3)
    r = jax.random.bits(k1, (2, 3), jnp.uint64) + jax.random.bits(k2, (5,), jnp.uint8)[0].astype(jnp.uint64)
    t = jax.random.fold_in(k3, 3)                                            # fallback
    return a, b, c, d, e, f, g, h, halves, i, j, r, jax.random.key_data(t)


@pytest.mark.parametrize("impl", ["splitmix64", "threefry2x32"])
def test_rules_and_fallbacks_are_bit_identical(impl):
    rng = np.random.default_rng(0)
    n = 5
    x = jnp.asarray(rng.integers(-2**62, 2**62, (n, 2, 3)), jnp.int64)
    m = jnp.asarray(rng.integers(0, 2**64, (n, 2, 3, 4), dtype=np.uint64))
    shared = jnp.asarray(rng.integers(0, 2**64, (2, 2), dtype=np.uint64))
    root = jaxmpc.key(1) if impl == "splitmix64" else jax.random.key(1)
    data, kind = jax.random.key_data(jax.random.split(root, n)), jax.random.key_impl(root)
    got = jax.jit(lanes.vmap(_primitives, in_axes=(0, 0, 0, None)))(same_keys(data, kind), x, m, shared)
    want = jax.jit(jax.vmap(_primitives, in_axes=(0, 0, 0, None)))(same_keys(data, kind), x, m, shared)
    assert_same(got, want)


def test_key_reuse_is_still_caught():
    def reuse(key):
        return jax.random.bits(key, (2,), jnp.uint64) + jax.random.bits(key, (2,), jnp.uint64)

    with pytest.raises(jax.errors.KeyReuseError):
        lanes.vmap(reuse)(jax.random.split(jaxmpc.key(2), 3))


def test_python_scalar_shared_argument():
    f = lambda a, c: a * c
    np.testing.assert_array_equal(lanes.vmap(f, in_axes=(0, None))(jnp.arange(4.0), 2.5),
                                  jax.vmap(f, in_axes=(0, None))(jnp.arange(4.0), 2.5))


def test_bad_input():
    with pytest.raises(jaxmpc.InputTypeError, match="callable"):
        lanes.vmap(3)
    f = lanes.vmap(lambda a, b: a + b, in_axes=(0, 1))
    with pytest.raises(jaxmpc.InputTypeError, match="in_axes"):
        f(jnp.zeros(3), jnp.zeros(3))
    with pytest.raises(jaxmpc.InputTypeError, match="in_axes"):
        lanes.vmap(lambda a: a, in_axes=None)(jnp.zeros(3))
    with pytest.raises(jaxmpc.InputTypeError, match="same leading run axis"):
        lanes.vmap(lambda a, b: a + b)(jnp.zeros(3), jnp.zeros(4))
