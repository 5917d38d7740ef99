r"""Batching shared values: ``jax.vmap`` over the first non-party axis of every :class:`Shared`.

A :class:`~jaxmpc.Shared` holds ``shares: uint64[n_parties, *shape]``, so ``jax.vmap(f)(x)`` maps
axis 0 of the shares, which is the party axis: each mapped run would see one party's share as if it
were a whole sharing (plain-integer values "reveal" as numbers of order :math:`10^{18}`), and a
fixed-point one fails with "inconsistent sizes" (its encoding's bits are mapped too). :func:`vmap`
maps value axis ``a`` of a shared argument as axis ``a + 1`` of its shares and leaves the encoding
unmapped; :func:`axes` gives the same spec to pass to ``jax.vmap`` yourself. Misuse that can be
detected raises :class:`~jaxmpc.errors.ShareMismatchError`: a protocol or :func:`jaxmpc.reveal` on
a value whose party axis was mapped away (``Shared.n_parties``), an encoding whose precision bits
were mapped (:class:`~jaxmpc.FixedPoint`). Not detectable: mapping the party axis of a plain-integer
value whose batch size equals its party count.

Example:
    >>> import jax, jax.numpy as jnp, jaxmpc; jax.config.update("jax_enable_x64", True)
    >>> k0, k1, k2 = jax.random.split(jaxmpc.key(0), 3)
    >>> x = jaxmpc.share(k0, [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], jaxmpc.FixedPoint(10, 3))
    >>> def row(key, r):  # one row of x: a Shared of shape (2,)
    ...     return jaxmpc.reveal(jaxmpc.mul(key, r, r)).sum()
    >>> jaxmpc.vmap(row)(jax.random.split(k1, 3), x).round(2).tolist()
    [5.0, 25.0, 61.0]
    >>> y = jaxmpc.vmap(lambda k, r: jaxmpc.mul(k, r, r))(jax.random.split(k2, 3), x)
    >>> y.shares.shape, jaxmpc.reveal(y).round(2).tolist()   # results come back as one Shared
    ((2, 3, 2), [[1.0, 4.0], [9.0, 16.0], [25.0, 36.0]])
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import core as _core  # the vmap's own trace, to tell batched results from others

from ..errors import InputTypeError, ShareMismatchError
from ..core.fixedpoint import FixedPoint
from ..protocols.shared import Shared

__all__ = ["vmap", "axes"]


def _is_shared(x) -> bool:
    return isinstance(x, Shared)


def _check_axis(axis, what: str) -> None:
    if axis is not None and (isinstance(axis, bool) or not isinstance(axis, (int, np.integer))):
        raise InputTypeError(f"{what} must be an int or None, got {axis!r}.")


def _shared_spec(x: Shared, axis) -> Shared:
    """The ``jax.vmap`` axis spec of one Shared: value axis ``axis`` -> shares axis ``axis + 1``."""
    if axis is None:
        return None
    d = x.ndim
    if not -d <= axis < d:
        raise ShareMismatchError(
            f"jaxmpc.vmap: cannot map axis {axis} of a shared value of shape {x.shape} (axes count "
            "the value's axes, not the party axis of its shares)"
            + ("; a scalar shared value has no axis to map." if d == 0 else "."))
    fxp_spec = None
    if x.fxp is not None and x.fxp._bits.ndim > 1:  # a batch of precisions, in front
        if axis % d != 0:
            raise ShareMismatchError(
                f"jaxmpc.vmap: this value's encoding holds a batch of precisions for its axis 0, "
                f"but axis {axis} is mapped; map axis 0.")
        fxp_spec = FixedPoint.tree_unflatten(x.fxp.tree_flatten()[1], [0])
    _, parties = x.tree_flatten()
    return Shared.tree_unflatten(parties, [axis % d + 1, fxp_spec])


def axes(tree: Any, axis: int | None = 0) -> Any:
    """A ``jax.vmap`` ``in_axes`` / ``out_axes`` entry for ``tree`` mapping value axis ``axis``:
    axis ``axis + 1`` of every :class:`Shared`'s shares (its encoding unmapped), ``axis`` of every
    other leaf.

    Args:
        tree: a :class:`Shared`, or a pytree containing some (with the structure of the argument).
        axis: the axis to map, counted on the values (not on the shares); ``None`` maps nothing.
    Returns:
        A pytree prefix of ``tree`` for ``jax.vmap``.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> x = jaxmpc.share(jaxmpc.key(1), [3, 4, 5], None)   # plain integers
        >>> jax.vmap(jaxmpc.reveal, in_axes=(axes(x),))(x).tolist()
        [3, 4, 5]
    """
    _check_axis(axis, "axes(tree, axis): axis")
    return jax.tree_util.tree_map(lambda v: _shared_spec(v, axis) if _is_shared(v) else axis, tree,
                                  is_leaf=_is_shared)


def vmap(fn: Callable, in_axes=0, out_axes: int = 0) -> Callable:
    """``jax.vmap`` for functions of shared values: the batch axis of a :class:`Shared` is its
    value's axis (axis 1 of its shares for ``in_axes=0``), never the party axis.

    Args:
        fn: a function of positional arguments (keys, :class:`Shared` values, arrays, pytrees).
        in_axes: an int or ``None`` for every argument, or a tuple of them, one per positional
            argument; counted on the values of shared arguments (see :func:`axes`).
        out_axes: where the batch axis goes in every output (an int; counted on the values of
            shared outputs, whose party axis stays first). An output encoding that does not vary
            over the batch stays one :class:`~jaxmpc.FixedPoint`; one that does (a precision swept
            inside ``fn``) comes back as a batch of precisions in front, which
            :func:`jaxmpc.reveal` decodes row by row (``out_axes=0`` only).
    Returns:
        The batched function; keyword arguments are not taken (bind them with
        ``functools.partial``).
    """
    if not callable(fn):
        raise InputTypeError(f"jaxmpc.vmap: fn must be callable, got {type(fn).__name__}.")
    _check_axis(out_axes, "jaxmpc.vmap: out_axes")
    if out_axes is None:
        raise InputTypeError("jaxmpc.vmap: out_axes must be an int (the batch axis of the outputs).")

    def batched(*args, **kwargs):
        if kwargs:
            raise InputTypeError("jaxmpc.vmap: pass keyword arguments with functools.partial "
                                 f"(got {sorted(kwargs)}).")
        per_arg = tuple(in_axes) if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        if len(per_arg) != len(args):
            raise InputTypeError(f"jaxmpc.vmap: in_axes has {len(per_arg)} entries for {len(args)} "
                                 "positional arguments.")
        for a in per_arg:
            _check_axis(a, "jaxmpc.vmap: each in_axes entry")
        spec = tuple(axes(arg, a) for arg, a in zip(args, per_arg))
        meta = {}

        def inner(*xs):
            trace = _core.trace_ctx.trace  # this vmap's own trace: batched values belong to it
            out = fn(*xs)
            leaves, tree = jax.tree_util.tree_flatten(out, is_leaf=_is_shared)
            flat, kinds = [], []
            for leaf in leaves:
                if _is_shared(leaf):
                    bits = None if leaf.fxp is None else leaf.fxp._bits
                    kinds.append(("shared", leaf.tree_flatten()[1], leaf.fxp,
                                  bits is not None and getattr(bits, "_trace", None) is trace))
                    flat.append(leaf.shares)
                    flat.append(bits)
                else:
                    kinds.append(("leaf",))
                    flat.append(leaf)
            meta["tree"], meta["kinds"] = tree, kinds
            return flat

        flat = jax.vmap(inner, in_axes=spec, out_axes=0)(*args)
        it = iter(flat)
        leaves = []
        for kind in meta["kinds"]:
            if kind[0] == "leaf":
                leaves.append(jnp.moveaxis(next(it), 0, out_axes))
                continue
            _, parties, fxp, bits_batched = kind
            shares, bits = next(it), next(it)
            d = np.ndim(shares) - 1  # the value's rank, with the batch axis
            a = out_axes + d if out_axes < 0 else out_axes
            if not 0 <= a < d:
                raise ShareMismatchError(f"jaxmpc.vmap: out_axes={out_axes} is out of range for a "
                                         f"shared output of rank {d} (with the batch axis).")
            shares = jnp.moveaxis(shares, 0, a + 1)
            if fxp is not None:
                if bits_batched and a != 0:
                    raise ShareMismatchError(
                        "jaxmpc.vmap: an output encoding varies over the batch (a precision swept "
                        "inside fn); it can only come back with out_axes=0.")
                fxp = FixedPoint.tree_unflatten(fxp.tree_flatten()[1], [bits if bits_batched else bits[0]])
            leaves.append(Shared.tree_unflatten(parties, [shares, fxp]))
        return jax.tree_util.tree_unflatten(meta["tree"], leaves)

    return batched
