r"""Secure prediction: a shared argmax over classes, so that only predicted labels are revealed.

The logits of a shared model on shared inputs stay shared; :func:`argmax` runs a knockout tournament
of pairwise comparisons (:func:`jaxmpc.greater`) and oblivious selects (one Beaver product with the
comparison bit) and returns the *shared* index of the largest logit; :func:`predict` reveals that
index and nothing else (neither the logits nor which comparisons were won).

Example:
    >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
    >>> from jaxmpc import inference
    >>> k_x, k_arg = jax.random.split(jaxmpc.key(0))
    >>> x = jaxmpc.share(k_x, [[0.1, 2.0, -1.0], [3.0, 3.0, 0.5]], jaxmpc.FixedPoint(2, 16))
    >>> jaxmpc.reveal(inference.argmax(k_arg, x)).tolist()
    [1, 0]
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from .beaver import mul
from .errors import InputTypeError
from .keys import check_key
from .nn import Layer
from .shared import Shared, concatenate, reveal


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

    Protocol (knockout tournament, :math:`L = \lceil \log_2 C \rceil` levels):
        1. Pair up the surviving candidates :math:`(a, b)` (an odd one out advances unopposed).
        2. Compare: :math:`c = [b > a]` (:func:`jaxmpc.greater`; the result stays shared).
        3. Select the winners obliviously, :math:`v = a + c (b - a)` and :math:`i = i_a + c (i_b - i_a)`,
           values and indices in one Beaver product with the 0/1 integer :math:`c` (no truncation).
           On the first level the indices are public and :math:`i_b - i_a = 1`, so :math:`i = i_a + c`
           is local.
        4. After :math:`L` levels one candidate is left: its shared index is the result.

    Cost: :math:`L` comparisons on :math:`\lfloor C_l / 2 \rfloor` pairs per level
    (:func:`jaxmpc.compare.msb`: :math:`L(n) + 8` rounds each) and :math:`L` Beaver products of one
    round (values only on the first level, values and indices after): :math:`L (L(n) + 9)` rounds.
    """
    from .compare import greater  # compare imports beaver/nn-level modules; keep import lazy

    check_key(key)
    if not isinstance(x, Shared) or x.fxp is None:
        raise InputTypeError(
            f"argmax: x must be a fixed-point jaxmpc.Shared (e.g. a model's logits), got "
            f"{x!r}. Share it first with jaxmpc.share(key, x, fxp)."
        )
    if x.ndim < 1 or x.shape[-1] < 1:
        raise InputTypeError(f"argmax: x needs a non-empty last (class) axis, got shape {x.shape}.")
    n_classes = x.shape[-1]
    vals = x
    idx: Shared | np.ndarray = np.arange(n_classes, dtype=np.int64)  # public until the first select
    levels = argmax_rounds(n_classes)
    keys = jax.random.split(key, max(levels, 1))
    for level in range(levels):
        m = vals.shape[-1] // 2
        k_cmp, k_sel = jax.random.split(keys[level])
        a, b = vals[..., 0:2 * m:2], vals[..., 1:2 * m:2]
        win = greater(k_cmp, b, a)  # [b > a]: ties keep a, the lower index
        if isinstance(idx, np.ndarray):  # public indices, i_b - i_a = 1: only the values need a product
            vals_new = a + mul(k_sel, win, b - a)
            idx_new = win + jnp.asarray(idx[0:2 * m:2])
        else:
            ia, ib = idx[..., 0:2 * m:2], idx[..., 1:2 * m:2]
            diffs = Shared(jnp.stack([(b - a).shares, (ib - ia).shares], axis=-1), None)
            bits = Shared(win.shares[..., None], None)
            prod = mul(k_sel, bits, diffs)  # one Beaver product for values and indices
            vals_new = a + Shared(prod.shares[..., 0], a.fxp)
            idx_new = ia + Shared(prod.shares[..., 1], None)
        if vals.shape[-1] % 2:  # the odd one out advances unopposed
            last = vals[..., 2 * m:]
            vals_new = concatenate([vals_new, last], axis=-1)
            if isinstance(idx, np.ndarray):
                idx_last = Shared(jnp.zeros(last.shares.shape, last.shares.dtype), None) + \
                    jnp.asarray(idx[2 * m:])
            else:
                idx_last = idx[..., 2 * m:]
            idx_new = concatenate([idx_new, idx_last], axis=-1)
        vals, idx = vals_new, idx_new
    if isinstance(idx, np.ndarray):  # a single class: the answer is public and always 0
        return Shared(jnp.zeros(x.shares.shape[:-1], x.shares.dtype), None)
    return Shared(idx.shares[..., 0], None)


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
