r"""Secure prediction: a shared argmax over classes, so that only predicted labels are revealed.

The logits of a shared model on shared inputs stay shared; :func:`argmax` runs a knockout tournament
of pairwise comparisons (:func:`jaxmpc.greater`) and oblivious selects (one Beaver product with the
comparison bit) and returns the *shared* index of the largest logit; :func:`predict` reveals that
index and nothing else (neither the logits nor which comparisons were won).

Example:
    >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
    >>> from jaxmpc.nn import inference
    >>> k_x, k_arg = jax.random.split(jaxmpc.key(0))
    >>> x = jaxmpc.share(k_x, [[0.1, 2.0, -1.0], [3.0, 3.0, 0.5]], jaxmpc.FixedPoint(2, 16))
    >>> jaxmpc.reveal(inference.argmax(k_arg, x)).tolist()
    [1, 0]
"""
from __future__ import annotations

import math

import jax
import numpy as np

from ..errors import InputTypeError
from ..core.keys import check_key
from .layers import Layer
from ..protocols.shared import Shared, reveal


def argmax_rounds(n_classes: int) -> int:
    """Tournament levels of :func:`argmax`: :math:`\\lceil \\log_2 C \\rceil` (0 for one class)."""
    return math.ceil(math.log2(n_classes)) if n_classes > 1 else 0


def argmax(key, x: Shared) -> Shared:
    r"""Shared index of the largest entry along the last axis (ties go to the lower index).

    Args:
        key: PRNG key (split once per tournament level).
        x: :class:`Shared` of shape ``(*batch, C)`` (any fixed-point encoding), ``C >= 1``.
    Returns:
        :class:`Shared` with ``fxp=None`` and shape ``batch``, holding the index in ``0..C-1``
        (``jnp.argmax`` of the secret, up to ties within the fixed-point error).

    Protocol: :func:`jaxmpc.ops.compare.tournament` with the public tags :math:`0..C-1` (pairwise
    comparisons :math:`[b > a]` and oblivious selects of values and indices; on the first level the
    indices are public, so their select is local).

    Cost: :math:`L = \lceil \log_2 C \rceil` levels, each a comparison (:func:`jaxmpc.ops.compare.msb`:
    :math:`L(n) + 8` rounds) and one Beaver product: :math:`L (L(n) + 9)` rounds.
    """
    from ..ops.compare import tournament  # compare imports beaver/nn-level modules; keep import lazy

    check_key(key)
    if not isinstance(x, Shared) or x.fxp is None:
        raise InputTypeError(
            f"argmax: x must be a fixed-point jaxmpc.Shared (e.g. a model's logits), got "
            f"{x!r}. Share it first with jaxmpc.share(key, x, fxp)."
        )
    if x.ndim < 1 or x.shape[-1] < 1:
        raise InputTypeError(f"argmax: x needs a non-empty last (class) axis, got shape {x.shape}.")
    _, index = tournament(key, x, np.arange(x.shape[-1], dtype=np.int64)[:, None])
    return index[..., 0]


def classify(key, model: Layer, params, x: Shared) -> Shared:
    """Shared predicted labels of a shared model on shared inputs (nothing is opened).

    Args:
        key: PRNG key (split into the forward pass's and the argmax's).
        model: a :class:`jaxmpc.nn.Layer` whose output is ``(batch, C)`` class scores.
        params: its shared parameters.
        x: :class:`Shared` inputs ``(batch, features)``.
    Returns:
        :class:`Shared` ``fxp=None`` labels of shape ``(batch,)``.
    """
    k_fwd, k_arg = jax.random.split(key)
    scores, _ = model.forward(k_fwd, params, x)
    return argmax(k_arg, scores)


def predict(key, model: Layer, params, x: Shared) -> jax.Array:
    """Predicted labels ``int64[batch]``: :func:`classify`, then the labels (and only they) are revealed.

    Cost: the model's forward pass, :func:`argmax`, and one opening of ``batch`` ring elements.
    """
    return reveal(classify(key, model, params, x))
