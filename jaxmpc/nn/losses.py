r"""Losses on shared predictions, each returning ``(loss, dloss)``: the shared scalar loss and its
gradient with respect to the prediction, plus a plaintext twin for testing.

Sums of squares use Beaver *squaring* (dealer pair :math:`(a, a^2)`, one opening of :math:`x - a`)
and a single truncation of the summed product, instead of one multiplication and truncation per
element (PySyft's ``pow(2)`` then ``sum``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..protocols.arith import square_sum, truncate
from ..errors import InputTypeError, ShareMismatchError
from ..core.keys import check_key
from ..protocols.shared import Shared



def sse(key, pred: Shared, target: Shared, *, truncation: str = "default"):
    r"""Sum of squared errors :math:`L = \sum (p - t)^2`, :math:`\partial L/\partial p = 2(p - t)`.

    Args:
        key: PRNG key.
        pred, target: :class:`Shared` of the same shape and encoding.
    Returns:
        ``(loss, dloss)``: a scalar :class:`Shared` and a :class:`Shared` shaped like ``pred``.

    Cost: one Beaver square sum (1 round, opens :math:`|p|` elements) and one scalar truncation.
    The gradient is local (a public integer multiple).
    """
    d = _difference(key, pred, target, "sse")
    return square_sum(key, d, truncation=truncation), d * 2


def mse(key, pred: Shared, target: Shared, *, truncation: str = "default"):
    r"""Mean squared error :math:`L = \frac1N \sum (p - t)^2`, :math:`\partial L/\partial p = 2(p-t)/N`.

    :math:`N` is the number of elements. The division by :math:`N` is folded into the loss's
    truncation (divisor :math:`sN`), and the gradient costs one truncation by :math:`N`.

    Cost: Beaver square sum (1 round) + 2 truncations (1 round each with the dealer protocol).
    """
    d = _difference(key, pred, target, "mse")
    n = max(d.size, 1)
    k_loss, k_grad = jax.random.split(key)
    loss = square_sum(k_loss, d, divisor=n, truncation=truncation)
    grad = truncate(k_grad, d * 2, n, truncation=truncation)
    return loss, grad


def _difference(key, pred, target, fname: str) -> Shared:
    """``pred - target`` for a fixed-point ``pred`` and a target of exactly its shape (a shared or
    public array): broadcasting would silently change the loss."""
    check_key(key)
    if not isinstance(pred, Shared) or pred.fxp is None:
        raise InputTypeError(f"{fname}: pred must be a fixed-point jaxmpc.Shared, got "
                             f"{type(pred).__name__ if not isinstance(pred, Shared) else 'plain integers'}.")
    t_shape = target.shape if isinstance(target, Shared) else jnp.shape(target)
    if tuple(t_shape) != pred.shape:
        raise ShareMismatchError(
            f"{fname}: target must have pred's shape {pred.shape}, got {tuple(t_shape)}; reshape one "
            "of them (broadcasting would silently sum over the wrong elements).")
    return pred - target


def sse_plain(pred, target):
    """Plaintext twin of :func:`sse`."""
    return jnp.sum((pred - target) ** 2)


def mse_plain(pred, target):
    """Plaintext twin of :func:`mse`."""
    return jnp.mean((pred - target) ** 2)


# ---- classification losses (with jaxmpc.ops.approx) -------------------------------------------------


def _times_target(key, t, z: Shared, truncation: str) -> Shared:
    """:math:`t \\odot z` for a target ``t`` that is a Shared (fixed-point or plain integer) or public."""
    from ..protocols.arith import mul, mul_public
    if isinstance(t, Shared):
        return mul(key, t, z, truncation=truncation)
    t = jnp.asarray(t)
    if jnp.issubdtype(t.dtype, jnp.integer):
        return z * t
    return mul_public(key, z, t, truncation=truncation)


def _minus(p: Shared, t):
    """:math:`p - t` for a fixed-point ``p`` and a target that may be a plain-integer Shared."""
    if isinstance(t, Shared) and t.fxp is None:
        t = t.like(t.shares * p.fxp.ring_scale, p.fxp)  # encode the integers: exact, local
    return p - t


def softmax_cross_entropy(key, logits: Shared, onehot, *, iterations: int = 10,
                          exp_iterations: int = 8, log_iterations: int = 2, log_order: int = 8,
                          truncation: str = "default"):
    r"""Softmax cross-entropy, mean over the batch, and its gradient with respect to the logits.

    With :math:`z = x - \max_c x` (row max by a secure tournament), :math:`S = \sum_c e^{z_c}`:

    .. math:: L = \frac1B \sum_b \Big(\log S_b - \sum_c t_{bc} z_{bc}\Big), \qquad
              \frac{\partial L}{\partial x} = \frac{\mathrm{softmax}(x) - t}{B}.

    The log is taken of :math:`S \in [1, C]` (never of a small probability), where
    :func:`jaxmpc.ops.approx.log` is accurate; the loss needs no plaintext.

    Args:
        key: PRNG key.
        logits: fixed-point :class:`Shared` of shape ``(B, C)``.
        onehot: targets of shape ``(B, C)`` (rows sum to 1): a fixed-point :class:`Shared`, a
            plain-integer :class:`Shared` (``fxp=None``, no truncation), or a public array.
        iterations, exp_iterations: of :func:`jaxmpc.ops.approx.reciprocal` / :func:`~jaxmpc.ops.approx.exp`.
        log_iterations, log_order: of :func:`jaxmpc.ops.approx.log`.
        truncation: a truncation option (:func:`jaxmpc.mul`).
    Returns:
        ``(loss, dloss)``: a scalar :class:`Shared` and a :class:`Shared` shaped like ``logits``.

    Domain: logit spread per row below :math:`2^{n_e}` (256), :math:`C \le 100`. Error against
    float64 (measured, 2 parties, :math:`s = 2^{16}`, logits :math:`N(0, 4)`, :math:`C = 5`): loss
    within 0.01 (the log's limit-exp bias, :math:`\approx \log(C)^2/2^{n_e+1}`), dloss within
    :math:`3 \cdot 10^{-3}/B`.

    Cost: softmax (:func:`jaxmpc.ops.approx.softmax`) + :func:`jaxmpc.ops.approx.log` on :math:`B` values
    + 1 product (:math:`t z`) + 2 truncations by :math:`B`. In rounds (accounted sequentially):
    :math:`\lceil\log_2 C\rceil(M+1) + (1 + 2n_e) + (2 + 2n_e + 4I) + 2 + 87 + 2 + 2`.
    """
    from ..ops.approx import exp, log, reciprocal, tree_max
    from ..protocols.arith import div_public, mul
    if not isinstance(logits, Shared) or logits.fxp is None or logits.ndim != 2:
        raise InputTypeError(
            f"softmax_cross_entropy: logits must be a fixed-point jaxmpc.Shared of shape (B, C), got "
            f"{type(logits).__name__}{' of shape ' + str(logits.shape) if isinstance(logits, Shared) else ''}."
        )
    if tuple(jnp.shape(onehot) if not isinstance(onehot, Shared) else onehot.shape) != logits.shape:
        raise InputTypeError(
            f"softmax_cross_entropy: onehot must have the logits' shape {logits.shape}, got "
            f"{onehot.shape if isinstance(onehot, Shared) else jnp.shape(onehot)}."
        )
    batch = logits.shape[0]
    keys = jax.random.split(key, 8)
    m = tree_max(keys[0], logits, axis=-1, keepdims=True)
    z = logits - m.broadcast_to(logits.shape)
    e = exp(keys[1], z, iterations=exp_iterations, truncation=truncation)
    s = e.sum(axis=-1)
    r = reciprocal(keys[2], s, iterations=iterations, exp_iterations=exp_iterations, signed=False,
                   range="narrow", truncation=truncation)  # row sums in [1, C]: positive, the fast path
    p = mul(keys[3], e, r.reshape(batch, 1), truncation=truncation)
    log_s = log(keys[4], s, iterations=log_iterations, order=log_order,
                exp_iterations=exp_iterations, truncation=truncation)
    tz = _times_target(keys[5], onehot, z, truncation).sum(axis=-1)
    loss = div_public(keys[6], (log_s - tz).sum(), max(batch, 1), truncation=truncation)
    dloss = div_public(keys[7], _minus(p, onehot), max(batch, 1), truncation=truncation)
    return loss, dloss


def softmax_cross_entropy_plain(logits, onehot):
    """Plaintext twin of :func:`softmax_cross_entropy` (exact float64: the oracle for its gradient)."""
    logits = jnp.asarray(logits, jnp.float64)
    return -jnp.mean(jnp.sum(jnp.asarray(onehot, jnp.float64) * jax.nn.log_softmax(logits, axis=-1),
                             axis=-1))


def binary_cross_entropy_with_sigmoid(key, logits: Shared, targets, *, iterations: int = 4,
                                      exp_iterations: int = 8, log_iterations: int = 2,
                                      log_order: int = 8, truncation: str = "default"):
    r"""Binary cross-entropy on logits, mean over all :math:`N` elements, and its gradient.

    .. math:: L = \frac1N \sum \big(\max(x, 0) - t x + \log(1 + e^{-|x|})\big), \qquad
              \frac{\partial L}{\partial x} = \frac{\sigma(x) - t}{N}

    (the stable softplus form; for logits of shape ``(B,)`` or ``(B, 1)``, :math:`N = B`). The
    sigmoid, :math:`b = [x < 0]`, :math:`\max(x, 0) = x - bx` and :math:`1 + e^{-|x|} \in (1, 2]`
    all come from one :func:`jaxmpc.ops.approx.sigmoid` evaluation; the log is of a value in (1, 2].

    Args:
        key: PRNG key.
        logits: fixed-point :class:`Shared`, any shape.
        targets: same shape, values in [0, 1]: fixed-point :class:`Shared`, plain-integer
            :class:`Shared`, or public array.
        iterations, exp_iterations: of :func:`jaxmpc.ops.approx.sigmoid`.
        log_iterations, log_order: of :func:`jaxmpc.ops.approx.log`.
        truncation: a truncation option (:func:`jaxmpc.mul`).
    Returns:
        ``(loss, dloss)``: a scalar :class:`Shared` and a :class:`Shared` shaped like ``logits``.

    Domain: :math:`|x| < 2^{n_e}`. Error against float64 (measured, 2 parties,
    :math:`s = 2^{16}`, :math:`x \in [-8, 8]`): loss within 3e-3, dloss within :math:`2 \cdot
    10^{-3}/N`.

    Cost: :func:`jaxmpc.ops.approx.sigmoid` (:math:`M + 36` rounds) + :func:`jaxmpc.ops.approx.log`
    (87) + 1 product (:math:`tx`, 2) + 2 truncations by :math:`N` (2).
    """
    from ..ops.approx import sigmoid_parts, log
    from ..protocols.arith import div_public
    if not isinstance(logits, Shared) or logits.fxp is None:
        raise InputTypeError(
            "binary_cross_entropy_with_sigmoid: logits must be a fixed-point jaxmpc.Shared, got "
            f"{type(logits).__name__}."
        )
    t_shape = targets.shape if isinstance(targets, Shared) else jnp.shape(targets)
    if tuple(t_shape) != logits.shape:
        raise InputTypeError(
            f"binary_cross_entropy_with_sigmoid: targets must have the logits' shape {logits.shape},"
            f" got {tuple(t_shape)}."
        )
    n = max(logits.size, 1)
    keys = jax.random.split(key, 5)
    sig, _, bx, z = sigmoid_parts(keys[0], logits, iterations, exp_iterations, truncation)
    log_z = log(keys[1], z, iterations=log_iterations, order=log_order,
                exp_iterations=exp_iterations, truncation=truncation)
    tx = _times_target(keys[2], targets, logits, truncation)
    loss = div_public(keys[3], (logits - bx - tx + log_z).sum(), n, truncation=truncation)
    dloss = div_public(keys[4], _minus(sig, targets), n, truncation=truncation)
    return loss, dloss


def binary_cross_entropy_with_sigmoid_plain(logits, targets):
    """Plaintext twin of :func:`binary_cross_entropy_with_sigmoid` (exact float64)."""
    x = jnp.asarray(logits, jnp.float64)
    t = jnp.asarray(targets, jnp.float64)
    return jnp.mean(jax.nn.softplus(x) - t * x)  # softplus's gradient is exactly the sigmoid
