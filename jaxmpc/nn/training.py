r"""Encrypted training: one jit-able step and a ``lax.scan`` loop, pure functions of their keys.

Every run is a pure function of (keys, precision, hyperparameters), so ``jax.vmap`` turns one run
into a batch of runs over seeds, precisions and learning rates, compiled once.

Example (the seed task, 3 steps):
    >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
    >>> from jaxmpc import nn
    >>> from jaxmpc.nn import losses, optim, training
    >>> model = nn.serial(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> k = jax.random.split(jax.random.key(0), 5)
    >>> fxp = jaxmpc.FixedPoint(10, 4)
    >>> x = jaxmpc.share(k[0], [[0., 0.], [0., 1.], [1., 0.], [1., 1.]], fxp)
    >>> t = jaxmpc.share(k[1], [[0.], [0.], [1.], [1.]], fxp)
    >>> params = jaxmpc.share(k[2], model.init(jax.random.key(7)), fxp)
    >>> opt = optim.sgd(0.1, key=k[3])
    >>> params, state, loss = training.fit(k[4], model, losses.sse, opt, params, opt.init(params), x, t, 3)
    >>> loss.shape
    (3,)
"""
from __future__ import annotations

from typing import Callable

import jax
import optax

from ..trace import accounting
from .layers import Layer
from ..protocols.shared import Shared, reveal


def step(key, model: Layer, loss_fn: Callable, optimizer: optax.GradientTransformation,
         params, opt_state, x: Shared, target: Shared):
    """One training step on shared data: forward, loss, manual backward, optimizer update.

    Args:
        key: PRNG key (split into forward, loss and backward keys).
        model: a :class:`jaxmpc.nn.Layer`.
        loss_fn: ``loss_fn(key, pred, target) -> (loss, dloss)`` (e.g. :func:`jaxmpc.nn.losses.sse`).
        optimizer: an optax transformation over shared params (e.g. :func:`jaxmpc.nn.optim.sgd`).
        params, opt_state: shared parameters and optimizer state.
        x, target: a shared batch.
    Returns:
        ``(params, opt_state, loss)`` with ``loss`` the shared scalar loss *before* the update.
    """
    k_fwd, k_loss, k_bwd = jax.random.split(key, 3)
    pred, residuals = model.forward(k_fwd, params, x)
    loss, dpred = loss_fn(k_loss, pred, target)
    grads, _ = model.backward(k_bwd, params, residuals, dpred, need_dx=False)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


def fit(key, model: Layer, loss_fn: Callable, optimizer: optax.GradientTransformation,
        params, opt_state, x: Shared, target: Shared, steps: int):
    """Full-batch training for ``steps`` steps in one ``lax.scan``; the loss is revealed each step.

    :func:`jaxmpc.cost` of ``fit`` counts every step (the scan is :func:`jaxmpc.trace.accounting.scan`).

    Returns:
        ``(params, opt_state, losses)`` with ``losses: float64[steps]`` (revealed, before each update).
    """
    def body(carry, _):
        k, p, s = carry
        k, k_step = jax.random.split(k)  # the key is carried and split, never reused
        p, s, loss = step(k_step, model, loss_fn, optimizer, p, s, x, target)
        return (k, p, s), reveal(loss)

    (_, params, opt_state), losses = accounting.scan(body, (key, params, opt_state), None, length=steps)
    return params, opt_state, losses
