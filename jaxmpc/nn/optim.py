r"""Optimizers over shared parameters as optax ``GradientTransformation``\ s.

The learning rate and momentum are public. Each product of a public real and a shared value is a
local multiplication followed by one truncation (a protocol when ``truncation="dealer"``), so the
transformation carries a PRNG key in its state and splits it at every step (never reusing it).

Because a shared value is a pytree whose leaf is its ``uint64`` shares (the precision travels as
boolean bits that add as OR), ``optax.chain`` and ``optax.apply_updates`` work unchanged:
adding update shares to parameter shares mod 2^64 adds the secrets.

Example:
    >>> import jax, optax, jaxmpc; jax.config.update("jax_enable_x64", True)
    >>> k_p, k_g, k_opt = jax.random.split(jax.random.key(0), 3)
    >>> fxp = jaxmpc.FixedPoint(10, 4)
    >>> params = jaxmpc.share(k_p, {"w": [1.0, 2.0]}, fxp)
    >>> grads = jaxmpc.share(k_g, {"w": [0.5, -1.0]}, fxp)
    >>> opt = jaxmpc.nn.optim.sgd(0.1, key=k_opt)
    >>> updates, state = opt.update(grads, opt.init(params))
    >>> [round(float(w), 3) for w in jaxmpc.reveal(optax.apply_updates(params, updates))["w"]]
    [0.95, 2.1]
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..trace import diagnostics
from ..core import ring
from ..errors import EncodingError, InputTypeError
from ..core.fixedpoint import check_numeric
from ..core.keys import check_key
from ..protocols.shared import Shared, check_same_parties
from ..protocols import interface


def _is_shared(x) -> bool:
    return isinstance(x, Shared)


def _check_scalar(c, name: str) -> None:
    """A public real scalar (traced under vmap), finite when concrete."""
    if np.ndim(check_numeric(c, name)) != 0:
        raise InputTypeError(f"sgd: {name} must be a public scalar, got shape {np.shape(c)}.")
    if not isinstance(c, jax.core.Tracer) and not np.isfinite(np.asarray(c, np.float64)):
        raise EncodingError(f"sgd: {name} must be finite, got {c!r}.")


def _check_updates(leaves) -> None:
    """Fixed-point shared values, all among the same parties."""
    for leaf in leaves:
        if not isinstance(leaf, Shared) or leaf.fxp is None:
            raise InputTypeError("optimizer updates must be fixed-point jaxmpc.Shared values, got "
                                 f"{type(leaf).__name__}.")
        check_same_parties(leaves[0], leaf)


# A leaf at least this large is truncated in place; smaller ones are concatenated into one block.
OWN_BLOCK = 1 << 15


def _mul_public_all(key, tree, c, truncation: str):
    r"""Every shared leaf of ``tree`` times the public real ``c``, with ONE truncation for all.

    Each leaf is multiplied by :math:`\mathrm{encode}(c)` locally; then all of them are truncated
    together (the family's ``truncate_many`` kernel; additive: one dealer draw, one opening round,
    the bits of truncating their concatenation). Large leaves (``OWN_BLOCK`` elements or more) keep their
    own block, where copying them into one vector would cost more than the extra compiled code;
    the small ones share one block (each element keeps its own scale as its divisor, so leaves may
    even have different precisions).
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree, is_leaf=_is_shared)
    if not leaves:
        return tree
    _check_updates(leaves)
    _check_scalar(c, "learning rate / momentum")
    n = leaves[0].n_parties
    products = []
    for leaf in leaves:
        v = leaf._public(c, "learning rate / momentum")
        z = leaf.shares * ring.per_party(v, leaf.shares)
        diagnostics.observe_product("sgd", leaf.shares, v, z, jnp.multiply, y_public=True)  # nothing unless collecting
        products.append(z)
    small = [i for i, leaf in enumerate(leaves) if leaf.size < OWN_BLOCK]
    blocks = [products[i] for i, leaf in enumerate(leaves) if leaf.size >= OWN_BLOCK]
    divisors = [leaf.fxp.ring_scale for leaf in leaves if leaf.size >= OWN_BLOCK]
    if small:
        blocks.append(jnp.concatenate([products[i].reshape(n, -1) for i in small], axis=1))
        divisors.append(jnp.concatenate([jnp.broadcast_to(leaves[i].fxp.ring_scale, (leaves[i].size,))
                                         for i in small]))
    with diagnostics.label("sgd"):
        fam = interface.kernels_of(*leaves)
        blocks = fam.kernel("truncate_many")(key, blocks, divisors,
                                             fam.truncation_for(truncation, n))
    out = [blocks[j] for j in range(len(blocks) - bool(small))]
    flat, start = (blocks[-1] if small else None), 0
    for i in small:
        out.insert(i, flat[:, start:start + leaves[i].size].reshape(leaves[i].shares.shape))
        start += leaves[i].size
    return jax.tree_util.tree_unflatten(treedef, [leaf.like(z) for z, leaf in zip(out, leaves)])


class SgdState(NamedTuple):
    key: jax.Array
    trace: optax.Params  # momentum buffer (shared), or () without momentum


def sgd(learning_rate, *, key, momentum: float | None = None, truncation: str = "default"
        ) -> optax.GradientTransformation:
    r"""Stochastic gradient descent on shared parameters, optionally with momentum.

    Without momentum: :math:`u = -\eta g`. With momentum :math:`\mu` (optax's convention):
    :math:`m \leftarrow g + \mu m`, :math:`u = -\eta m`.

    Args:
        learning_rate: public :math:`\eta` (a float, or a traced scalar to ``vmap`` over).
        key: PRNG key for the truncations (keyword-only; split at every step).
        momentum: public :math:`\mu`, or None.
        truncation: a truncation option (:func:`jaxmpc.mul`).
    Returns:
        An ``optax.GradientTransformation`` over pytrees of :class:`Shared`.

    Cost per step: one truncation per parameter element (two with momentum), batched over all
    parameters into one opening (1 round; 2 with momentum).
    """
    check_key(key, "sgd(key=...)")
    _check_scalar(learning_rate, "learning_rate")
    if momentum is not None:
        _check_scalar(momentum, "momentum")

    def init(params):
        trace = () if momentum is None else jax.tree_util.tree_map(
            lambda p: p.like(jnp.zeros_like(p.shares)), params, is_leaf=_is_shared)
        return SgdState(key=key, trace=trace)

    def update(grads, state, params=None):
        del params
        _check_updates(jax.tree_util.tree_leaves(grads, is_leaf=_is_shared))  # before the key is split
        k_next, k_trace, k_step = jax.random.split(state.key, 3)
        if momentum is None:
            trace = ()
            direction = grads
        else:
            decayed = _mul_public_all(k_trace, state.trace, momentum, truncation)
            trace = jax.tree_util.tree_map(lambda m, g: m + g, decayed, grads, is_leaf=_is_shared)
            direction = trace
        updates = _mul_public_all(k_step, direction, -learning_rate, truncation)
        return updates, SgdState(key=k_next, trace=trace)

    return optax.GradientTransformation(init, update)
