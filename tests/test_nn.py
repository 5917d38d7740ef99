"""Layers, losses and optimizers on shares against their plaintext twins.

Manual backward passes are checked against ``jax.vjp`` of the plaintext twin (JAX's autodiff is the
oracle). Bounds are in units of 1/scale: every shared input is encoded with error <= 0.5 unit, and
every truncation adds < 1.5 units (dealer protocol), so a product of magnitude-1 values summed over
k terms is within about (k + 2) units.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxmpc
from jaxmpc import nn
from jaxmpc.nn import losses, optim, training

FXP_BITS = 16  # base 2, 16 fractional bits: one unit = 2^-16
UNIT = 2.0 ** -FXP_BITS


def _fxp():
    return jaxmpc.FixedPoint(2, FXP_BITS)


def _data(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, s) for s in shapes]


@functools.lru_cache(maxsize=None)
def _layer_fn(kind: str, n_parties: int):
    """A jitted forward+backward of one layer kind on shares, revealed (compiled once per config)."""
    layer = {"linear": nn.Linear(3, 4), "relu": nn.ReLU(),
             "mlp": nn.serial(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))}[kind]

    @jax.jit
    def f(key, params, x, dy):
        k_p, k_x, k_dy, k_f, k_b = jax.random.split(key, 5)
        fxp = _fxp()
        sp = jaxmpc.share(k_p, params, fxp, n_parties)
        sx = jaxmpc.share(k_x, x, fxp, n_parties)
        sdy = jaxmpc.share(k_dy, dy, fxp, n_parties)
        y, res = layer.forward(k_f, sp, sx)
        grads, dx = layer.backward(k_b, sp, res, sdy)
        return jaxmpc.reveal((y, grads, dx))

    return layer, f


@pytest.mark.parametrize("n_parties", [2, 3, 5])
@pytest.mark.parametrize("kind", ["linear", "relu", "mlp"])
def test_backward_matches_vjp(kind, n_parties):
    layer, f = _layer_fn(kind, n_parties)
    params = layer.init(jax.random.key(1))
    (x,) = _data(n_parties, (5, 3))
    y_plain, vjp = jax.vjp(layer.plain, params, jnp.asarray(x))
    (dy,) = _data(10 + n_parties, y_plain.shape)
    gp, gx = vjp(jnp.asarray(dy))
    y, grads, dx = f(jax.random.key(2), params, x, dy)
    bound = 12 * UNIT  # <= 5-term sums of products (+ encoding), per the module docstring
    np.testing.assert_allclose(y, y_plain, atol=bound, rtol=0)
    np.testing.assert_allclose(dx, gx, atol=bound, rtol=0)
    for got, want in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(gp)):
        np.testing.assert_allclose(got, want, atol=bound, rtol=0)


def test_serial_skips_first_input_gradient():
    model = nn.serial(nn.Linear(2, 2), nn.Linear(2, 1))
    fxp = _fxp()

    def backward(key):
        k = jax.random.split(key, 6)
        p = jaxmpc.share(k[0], model.init(k[1]), fxp)
        x = jaxmpc.share(k[2], np.ones((3, 2)), fxp)
        y, res = model.forward(k[3], p, x)
        dy = jaxmpc.share(k[4], np.ones((3, 1)), fxp)
        return model.backward(k[5], p, res, dy, need_dx=False)

    grads, dx = jax.eval_shape(backward, jax.random.key(0))
    assert dx is None and len(grads) == 2
    tally = jaxmpc.trace.accounting.tally(backward, jax.random.key(0))
    assert tally.ops["matmul"].calls == 2 + 3  # forward 2; backward: dW twice, dx for layer 1 only


@functools.lru_cache(maxsize=None)
def _loss_fn(name: str, n_parties: int):
    loss_fn = {"sse": losses.sse, "mse": losses.mse}[name]

    @jax.jit
    def f(key, pred, target):
        k_p, k_t, k_l = jax.random.split(key, 3)
        fxp = _fxp()
        sp, st = jaxmpc.share(k_p, pred, fxp, n_parties), jaxmpc.share(k_t, target, fxp, n_parties)
        return jaxmpc.reveal(loss_fn(k_l, sp, st))

    return f


@pytest.mark.parametrize("n_parties", [2, 3, 5])
@pytest.mark.parametrize("name", ["sse", "mse"])
def test_losses_match_value_and_grad(name, n_parties):
    plain = {"sse": losses.sse_plain, "mse": losses.mse_plain}[name]
    pred, target = _data(3, (4, 3), (4, 3))
    want, want_grad = jax.value_and_grad(plain)(jnp.asarray(pred), jnp.asarray(target))
    got, got_grad = _loss_fn(name, n_parties)(jax.random.key(n_parties), pred, target)
    # 12 terms of squares of encoded differences (1 unit each, magnitude <= 2), one truncation
    np.testing.assert_allclose(got, want, atol=60 * UNIT, rtol=0)
    np.testing.assert_allclose(got_grad, want_grad, atol=4 * UNIT, rtol=0)


@pytest.mark.parametrize("own_block", [optim.OWN_BLOCK, 2, 1])  # w alone / every leaf alone
@pytest.mark.parametrize("momentum", [None, 0.9])
def test_sgd_matches_optax_and_chains(momentum, own_block, monkeypatch):
    """Three steps of shared SGD follow optax.sgd on plaintext; optax.chain and apply_updates work,
    whichever leaves share the batched truncation's concatenated block."""
    monkeypatch.setattr(optim, "OWN_BLOCK", own_block)
    fxp = _fxp()
    k = jax.random.split(jax.random.key(5), 8)
    params0 = {"w": np.array([1.0, -2.0, 0.5]), "b": np.array(0.25)}
    grads = [{"w": g, "b": b} for g, b in zip(_data(7, (3,), (3,), (3,)), _data(8, (), (), ()))]
    tx = optax.chain(optax.identity(), optim.sgd(0.1, key=k[0], momentum=momentum))
    ref = optax.sgd(0.1, momentum=momentum)
    p, s = jaxmpc.share(k[1], params0, fxp), None
    s = tx.init(p)
    rp, rs = jax.tree_util.tree_map(jnp.asarray, params0), None
    rs = ref.init(rp)
    for i, g in enumerate(grads):
        u, s = tx.update(jaxmpc.share(k[2 + i], g, fxp), s, p)
        p = optax.apply_updates(p, u)
        ru, rs = ref.update(jax.tree_util.tree_map(jnp.asarray, g), rs, rp)
        rp = optax.apply_updates(rp, ru)
    got = jaxmpc.reveal(p)
    for name in params0:
        np.testing.assert_allclose(got[name], rp[name], atol=20 * UNIT, rtol=0)
    assert p["w"].fxp.concrete_precision() == FXP_BITS  # apply_updates kept the encoding


def test_sgd_rejects_bad_key():
    with pytest.raises(jaxmpc.InputTypeError, match="key"):
        optim.sgd(0.1, key=0)


def test_epoch_is_the_step_loop_and_the_twin_follows():
    """training.epoch is training.step over the minibatches with the key carried and split at every
    step (the same shares bit for bit, and it returns the carried key); training.plain_epoch is
    plain_step's loop; the encrypted losses track the twin's."""
    model = nn.serial(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    fxp = _fxp()
    x_np, t_np = _data(20, (8, 3), (8, 2))
    order = np.array([[3, 0, 5, 6], [1, 7, 2, 4]], np.int32)
    init = model.init(jax.random.key(21))

    def setup():  # the same values from fresh key objects: each run consumes its own keys
        k = jax.random.split(jaxmpc.key(22), 4)
        p, x, t = (jaxmpc.share(kk, v, fxp) for kk, v in zip(k[:3], (init, x_np, t_np)))
        opt = optim.sgd(0.1, key=k[3], momentum=0.9)
        return opt, p, opt.init(p), x, t

    opt, p, s, x, t = setup()
    key, p_epoch, _, loss_epoch = jax.jit(lambda k, p, s, x, t: training.epoch(
        k, model, losses.mse, opt, p, s, x, t, order))(jaxmpc.key(23), p, s, x, t)
    opt, p, s, x, t = setup()
    step = jax.jit(lambda k, p, s, xb, tb: training.step(k, model, losses.mse, opt, p, s, xb, tb))
    k, loss_steps = jaxmpc.key(23), []
    for idx in order:
        k, k_step = jax.random.split(k)
        p, s, loss = step(k_step, p, s, x[idx], t[idx])
        loss_steps.append(float(jaxmpc.reveal(loss)))
    for got, want in zip(jax.tree_util.tree_leaves(p_epoch), jax.tree_util.tree_leaves(p)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(jax.random.key_data(key), jax.random.key_data(k))
    np.testing.assert_allclose(loss_epoch, loss_steps, rtol=1e-12)

    tx = optax.sgd(0.1, momentum=0.9)
    pp, ps, plain_epoch = training.plain_epoch(model, losses.mse_plain, tx, init, tx.init(init),
                                               jnp.asarray(x_np), jnp.asarray(t_np), order)
    qp, qs = init, tx.init(init)
    for i, idx in enumerate(order):
        qp, qs, plain_loss = training.plain_step(model, losses.mse_plain, tx, qp, qs, x_np[idx], t_np[idx])
        np.testing.assert_allclose(plain_epoch[i], plain_loss, rtol=1e-12)
    for got, want in zip(jax.tree_util.tree_leaves(pp), jax.tree_util.tree_leaves(qp)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(loss_epoch, plain_epoch, atol=1e-3)
    np.testing.assert_allclose(jax.tree_util.tree_leaves(jaxmpc.reveal(p_epoch))[0],
                               jax.tree_util.tree_leaves(pp)[0], atol=1e-3)


@pytest.mark.parametrize("n_parties", [2, 3])
def test_linear_takes_several_batch_axes(n_parties):
    """CrypTen's test_linear input (6, 4, 2, 10): every leading axis is a batch axis, forward and
    backward, against the twin and jax.vjp (within a few units of 2^-16)."""
    fxp = jaxmpc.FixedPoint(2, 16)
    rng = np.random.default_rng(n_parties)
    x, dy = rng.normal(size=(6, 4, 2, 10)), rng.normal(size=(6, 4, 2, 5))
    layer = nn.Linear(10, 5)
    p = layer.init(jax.random.key(0))

    @jax.jit
    def run(key):
        k = jax.random.split(key, 5)
        sp = {name: jaxmpc.share(kk, v, fxp, n_parties) for (name, v), kk in zip(sorted(p.items()), k[:2])}
        y, res = layer.forward(k[2], sp, jaxmpc.share(k[3], x, fxp, n_parties))
        grads, dx = layer.backward(k[4], sp, res, jaxmpc.share(jax.random.fold_in(key, 7), dy, fxp, n_parties))
        return jaxmpc.reveal((y, grads, dx))

    y, grads, dx = run(jaxmpc.key(n_parties))
    y_w, vjp = jax.vjp(layer.plain, p, jnp.asarray(x))
    g_w, dx_w = vjp(jnp.asarray(dy))
    unit = 2.0 ** -16
    assert np.max(np.abs(y - y_w)) < 12 * unit and np.max(np.abs(dx - dx_w)) < 8 * unit
    assert np.max(np.abs(grads["weight"] - g_w["weight"])) < 50 * unit  # 48 terms a weight
    assert np.max(np.abs(grads["bias"] - g_w["bias"])) < 25 * unit
