r"""Losses on shared predictions, each returning ``(loss, dloss)``: the shared scalar loss and its
gradient with respect to the prediction, plus a plaintext twin for testing.

Sums of squares use Beaver *squaring* (dealer pair :math:`(a, a^2)`, one opening of :math:`x - a`)
and a single truncation of the summed product, instead of one multiplication and truncation per
element (PySyft's ``pow(2)`` then ``sum``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .beaver import square_sum
from .shared import Shared
from .truncation import truncate_shares


def sse(key, pred: Shared, target: Shared, *, truncation: str = "dealer"):
    r"""Sum of squared errors :math:`L = \sum (p - t)^2`, :math:`\partial L/\partial p = 2(p - t)`.

    Args:
        key: PRNG key.
        pred, target: :class:`Shared` of the same shape and encoding.
    Returns:
        ``(loss, dloss)``: a scalar :class:`Shared` and a :class:`Shared` shaped like ``pred``.

    Cost: one Beaver square sum (1 round, opens :math:`|p|` elements) and one scalar truncation.
    The gradient is local (a public integer multiple).
    """
    d = pred - target
    return square_sum(key, d, truncation=truncation), d * 2


def mse(key, pred: Shared, target: Shared, *, truncation: str = "dealer"):
    r"""Mean squared error :math:`L = \frac1N \sum (p - t)^2`, :math:`\partial L/\partial p = 2(p-t)/N`.

    :math:`N` is the number of elements. The division by :math:`N` is folded into the loss's
    truncation (divisor :math:`sN`), and the gradient costs one truncation by :math:`N`.

    Cost: Beaver square sum (1 round) + 2 truncations (1 round each with the dealer protocol).
    """
    d = pred - target
    n = max(d.size, 1)
    k_loss, k_grad = jax.random.split(key)
    loss = square_sum(k_loss, d, divisor=n, truncation=truncation)
    grad = Shared(truncate_shares(k_grad, (d * 2).shares, jnp.uint64(n), truncation), d.fxp)
    return loss, grad


def sse_plain(pred, target):
    """Plaintext twin of :func:`sse`."""
    return jnp.sum((pred - target) ** 2)


def mse_plain(pred, target):
    """Plaintext twin of :func:`mse`."""
    return jnp.mean((pred - target) ** 2)
