r"""Encrypted training: one jit-able step and ONE ``lax.scan`` loop over it, pure functions of their keys.

:func:`step` is forward, loss, manual backward and optimizer update on a shared batch; :func:`fit`
(full batch, ``steps`` times) and :func:`epoch` (minibatches in a given order) are the same loop
over it. :func:`plain_step` and :func:`plain_epoch` are their plaintext twins (``jax.value_and_grad``
and optax on float arrays), to train a reference model step for step the same way.

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


def _loop(key, model: Layer, loss_fn: Callable, optimizer: optax.GradientTransformation,
          params, opt_state, batch: Callable, xs, length: int | None):
    """THE training loop: a :func:`jaxmpc.trace.accounting.scan` of :func:`step` over ``xs`` (or
    ``length`` steps), the key carried and split at every step, the loss revealed each step.
    ``batch(item) -> (x, target)`` gives the shared batch of one item of ``xs``.

    Returns ``((key, params, opt_state), losses)`` with the carried key after the last split.
    """
    def body(carry, item):
        k, p, s = carry
        k, k_step = jax.random.split(k)  # the key is carried and split, never reused
        xb, tb = batch(item)
        p, s, loss = step(k_step, model, loss_fn, optimizer, p, s, xb, tb)
        return (k, p, s), reveal(loss)

    return accounting.scan(body, (key, params, opt_state), xs, length=length)


def fit(key, model: Layer, loss_fn: Callable, optimizer: optax.GradientTransformation,
        params, opt_state, x: Shared, target: Shared, steps: int):
    """Full-batch training for ``steps`` steps in one ``lax.scan``; the loss is revealed each step.

    :func:`jaxmpc.cost` of ``fit`` counts every step (the scan is :func:`jaxmpc.trace.accounting.scan`).

    Returns:
        ``(params, opt_state, losses)`` with ``losses: float64[steps]`` (revealed, before each update).
    """
    (_, params, opt_state), losses = _loop(key, model, loss_fn, optimizer, params, opt_state,
                                           lambda _: (x, target), None, steps)
    return params, opt_state, losses


def epoch(key, model: Layer, loss_fn: Callable, optimizer: optax.GradientTransformation,
          params, opt_state, x: Shared, target: Shared, order):
    """One epoch of minibatch training: the loop of :func:`fit` over the rows ``x[order[i]]``.

    Args:
        key: PRNG key, carried through the loop and split at every step.
        model, loss_fn, optimizer, params, opt_state: as for :func:`step`.
        x, target: the shared training set, ``(n, ...)`` each.
        order: ``int32[n_batches, batch]``, the minibatches' row indices (e.g. from
            :func:`jaxmpc.tasks.data.batch_order`).
    Returns:
        ``(key, params, opt_state, losses)``: the carried key after the last split (to continue
        with: it was never used), the updated state and ``losses: float64[n_batches]`` (revealed,
        before each update).
    """
    (key, params, opt_state), losses = _loop(key, model, loss_fn, optimizer, params, opt_state,
                                             lambda idx: (x[idx], target[idx]), order, None)
    return key, params, opt_state, losses


# ---- the plaintext twin -----------------------------------------------------------------------------
def plain_step(model: Layer, loss_fn: Callable, optimizer: optax.GradientTransformation,
               params, opt_state, x, target):
    """The twin of :func:`step` on plaintext arrays: ``jax.value_and_grad`` of
    ``loss_fn(model.plain(params, x), target)`` (e.g. :func:`jaxmpc.nn.losses.mse_plain`), then the
    optax ``optimizer``. Returns ``(params, opt_state, loss)``, the loss before the update."""
    value, grads = jax.value_and_grad(lambda p: loss_fn(model.plain(p, x), target))(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value


def plain_epoch(model: Layer, loss_fn: Callable, optimizer: optax.GradientTransformation,
                params, opt_state, x, target, order):
    """The twin of :func:`epoch`: :func:`plain_step` over the minibatches ``order`` in one
    ``lax.scan``. Returns ``(params, opt_state, losses)``."""
    def body(carry, idx):
        p, s, loss = plain_step(model, loss_fn, optimizer, *carry, x[idx], target[idx])
        return (p, s), loss

    (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), order)
    return params, opt_state, losses
