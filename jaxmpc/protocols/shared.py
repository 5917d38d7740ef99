r"""Secret-shared values: the :class:`Shared` pytree, :func:`share`, :func:`reveal`, local operations.

A value :math:`x` is held as additive components :math:`x = \sum_i x_i \bmod 2^{\ell}` in a single
array ``shares[n_parties, *shape]`` of the ring's words (``uint64`` for :math:`\ell = 64`,
``uint32`` for :math:`\ell = 32`) whose leading axis is the party, under a
:class:`~jaxmpc.protocols.interface.Protocol` (family, parties, ring) that says who holds which
component and which kernels compute on them (:mod:`jaxmpc.protocols.interface`). Local operations (no
communication, no key): ``+``, ``-``, unary ``-``, adding a public value (party 0 adds it), multiplying
by a public *integer*, and sum / reshape / transpose / indexing / concatenation over non-party axes.
Products of two shared values, or by a public fraction, need a protocol and a key: see
:func:`jaxmpc.mul`, :func:`jaxmpc.matmul`, :func:`jaxmpc.mul_public`.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..trace import accounting, diagnostics
from ..core import ring
from ..core import ring as ring_module  # share() has an argument named ring
from ..errors import InputTypeError, ShareMismatchError
from ..core.fixedpoint import FixedPoint, check_numeric
from ..core.keys import check_key
from . import interface
from .interface import Protocol


@jax.tree_util.register_pytree_node_class
class Shared:
    r"""Secret shares of a fixed-point (or plain integer) array under a protocol.

    Attributes:
        shares: ``uint64[n_parties, *shape]`` (``uint32`` on :math:`\mathbb{Z}_{2^{32}}`), the
            additive components of the value (in the additive family party ``i`` holds
            ``shares[i]``).
        fxp: the :class:`FixedPoint` encoding, or ``None`` for plain ring integers (bits, counts).
        protocol: the :class:`~jaxmpc.protocols.interface.Protocol` (static, hashable): family,
            number of parties, ring width. Default: the additive family among
            ``shares.shape[0]`` parties over the ring of the shares' dtype.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> x = jaxmpc.share(jax.random.key(0), [1.5, -2.0], jaxmpc.FixedPoint(10, 3))
        >>> x.n_parties, x.shape, jaxmpc.reveal(x + x).tolist()
        (2, (2,), [3.0, -4.0])
        >>> x.protocol
        Protocol(family='additive', n_parties=2, ring_bits=64)
    """

    __array_priority__ = 1000  # so that `ndarray + Shared` defers to Shared.__radd__

    def __init__(self, shares: jax.Array, fxp: FixedPoint | None, protocol: Protocol | None = None):
        if not ring.is_ring_array(shares) or shares.ndim < 1:
            raise InputTypeError(
                f"Shared(shares=...) must be a uint64 (or uint32) array with the party axis first, got "
                f"{getattr(shares, 'dtype', type(shares).__name__)}{list(getattr(shares, 'shape', []))}."
                " Use jaxmpc.share(key, x, fxp) to create shares."
            )
        if shares.shape[0] < 2:
            raise InputTypeError(f"Shared needs at least 2 parties, got shares of shape {shares.shape}.")
        if fxp is not None and not isinstance(fxp, FixedPoint):
            raise InputTypeError(f"Shared(fxp=...) must be a FixedPoint or None, got {fxp!r}.")
        bits = ring.bits_of(shares)
        if protocol is None:
            protocol = Protocol("additive", int(shares.shape[0]), bits)
        elif not isinstance(protocol, Protocol) or protocol.n_parties != shares.shape[0]:
            raise InputTypeError(
                f"Shared(protocol=...) must be a jaxmpc.protocols.interface.Protocol among "
                f"{shares.shape[0]} parties (the shares' leading axis), got {protocol!r}.")
        if protocol.ring_bits != bits or (fxp is not None and fxp.ring_bits != bits):
            raise ShareMismatchError(
                f"Shared: shares of dtype {np.dtype(shares.dtype)} are words of Z_2^{bits}, but the "
                f"protocol is over Z_2^{protocol.ring_bits}" + (
                    "" if fxp is None else f" and the encoding over Z_2^{fxp.ring_bits}")
                + ". Values of different rings do not mix: share every operand with the same ring=.")
        self.shares = shares
        self.fxp = fxp
        self.protocol = protocol

    # pytree: the protocol (with the party count) is static, so a transformation that maps the
    # party axis away (e.g. jax.vmap(f)(x)) leaves shares that disagree with it (see n_parties)
    def tree_flatten(self):
        return (self.shares, self.fxp), self.protocol

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.shares, obj.fxp = children
        obj.protocol = aux
        return obj

    def like(self, shares, fxp=...) -> "Shared":
        """A value under this value's protocol with other ``shares`` (and encoding, by default
        this value's); what every protocol returns for its results."""
        return Shared(shares, self.fxp if fxp is ... else fxp, self.protocol)

    # ---- shape information -------------------------------------------------------------------
    @property
    def n_parties(self) -> int:
        """The number of parties (the length of the shares' leading axis).

        Raises:
            :class:`~jaxmpc.errors.ShareMismatchError` when the shares' leading axis is no longer
            the party axis this value was shared with, e.g. inside ``jax.vmap(f)(x)``, which maps
            axis 0 of the shares (the parties). Batch shared values with :func:`jaxmpc.vmap`.
        """
        shape = tuple(self.shares.shape)
        n = self.protocol.n_parties
        if not shape or shape[0] != n:
            raise ShareMismatchError(
                f"this Shared value has {n} parties, but its shares have shape {shape}: "
                "the party axis (axis 0 of the shares) was mapped away or moved, e.g. by "
                "jax.vmap(f)(x), which maps axis 0. Batch shared values with jaxmpc.vmap(f)(x) (it "
                "maps the first non-party axis, axis 1 of the shares), or give jax.vmap the spec "
                "in_axes=jaxmpc.run.batching.axes(x)."
            )
        return shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.shares.shape[1:])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __repr__(self) -> str:
        shape = tuple(getattr(self.shares, "shape", ()))
        p = self.protocol
        return (f"Shared(shape={shape[1:]}, n_parties={p.n_parties}, fxp={self.fxp!r}, "
                f"protocol={p.family!r}, ring={p.ring_bits})")

    def _new(self, shares) -> "Shared":
        return self.like(shares)

    # ---- local arithmetic ----------------------------------------------------------------------
    def _public(self, c, name: str = "public operand") -> jax.Array:
        """Encode a public value in this value's encoding (ring integer if plain)."""
        check_numeric(c, name)
        if self.fxp is None:
            if not jnp.issubdtype(jnp.asarray(c).dtype, jnp.integer):
                raise InputTypeError(
                    f"{name} must be an integer to combine with a plain-integer Shared, got dtype "
                    f"{jnp.asarray(c).dtype}."
                )
            return ring.const(c, self.shares.dtype)
        self.fxp.check_values(c, name)
        return self.fxp.encode(c)

    def __add__(self, other):
        if isinstance(other, Shared):
            x, y = _align(self, other)
            return self.like(x + y, common_fxp(self, other, "+"))
        v = self._public(other)
        return self._new(ring.add_to_party0(_broadcast_shares(self.shares, v.shape), v))

    __radd__ = __add__

    def __neg__(self):
        return self._new(-self.shares)

    def __sub__(self, other):
        if isinstance(other, Shared):
            return self + (-other)
        v = self._public(other)  # encoded first (and checked), then negated in the ring
        return self._new(ring.add_to_party0(_broadcast_shares(self.shares, v.shape), -v))

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        if isinstance(other, Shared):
            raise InputTypeError(
                "Shared * Shared needs Beaver's protocol, which consumes a dealer triple and a key: "
                "call jaxmpc.mul(key, x, y) instead."
            )
        c = other if isinstance(other, jax.core.Tracer) else np.asarray(other)
        if c.dtype == bool or not jnp.issubdtype(c.dtype, jnp.integer):
            raise InputTypeError(
                f"Shared * public only takes integers locally (got dtype {c.dtype}); a public "
                "fraction needs a truncation: call jaxmpc.mul_public(key, x, c) instead."
            )
        shares = _broadcast_shares(self.shares, c.shape)
        return self._new(shares * ring.per_party(ring.const(c, shares.dtype), shares))

    __rmul__ = __mul__

    def __matmul__(self, other):
        raise InputTypeError("Shared @ ... needs Beaver's protocol: call jaxmpc.matmul(key, x, y) instead.")

    __rmatmul__ = __matmul__

    def __truediv__(self, other):
        raise InputTypeError(
            "Dividing a Shared (x / d, x // d) needs a truncation and a key: call "
            "jaxmpc.div_public(key, x, d) for a positive int d, jaxmpc.mul_public(key, x, 1 / c) for a "
            "public real c, or jaxmpc.divide(key, x, y) for a shared y."
        )

    __floordiv__ = __truediv__

    def __rtruediv__(self, other):
        raise InputTypeError(
            "public / Shared needs a secure reciprocal: call jaxmpc.reciprocal(key, x) (then "
            "jaxmpc.mul_public(key, r, c) for c / x), or jaxmpc.divide(key, c, x) for a shared c."
        )

    __rfloordiv__ = __rtruediv__

    def __pow__(self, other):
        raise InputTypeError(
            "A power of a Shared needs Beaver products: call jaxmpc.mul(key, x, x) for x ** 2 (repeat "
            "it for higher powers); c ** x is jaxmpc.exp of x * ln(c) (jaxmpc.mul_public)."
        )

    __rpow__ = __pow__

    def __bool__(self):
        raise InputTypeError("A Shared value has no truth value; compare with jaxmpc.less / greater.")

    # ---- shape operations over non-party axes ---------------------------------------------------
    def __getitem__(self, idx):
        idx = idx if isinstance(idx, tuple) else (idx,)
        return self._new(self.shares[(slice(None),) + idx])

    def sum(self, axis=None, keepdims: bool = False) -> "Shared":
        axes = tuple(range(self.ndim)) if axis is None else _axes(axis, self.ndim)
        return self._new(jnp.sum(self.shares, axis=tuple(a + 1 for a in axes), keepdims=keepdims,
                                 dtype=self.shares.dtype))

    def reshape(self, *shape) -> "Shared":
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        try:
            return self._new(self.shares.reshape((self.n_parties,) + tuple(shape)))
        except TypeError:  # JAX's message would quote the shapes with the party axis
            raise ShareMismatchError(
                f"reshape: a shared value of shape {self.shape} ({self.size} elements) cannot take shape "
                f"{tuple(shape)}: pass ints whose product is {self.size} (one of them may be -1). "
                "Shapes here leave out the party axis."
            ) from None

    def transpose(self, *axes) -> "Shared":
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        axes = tuple(reversed(range(self.ndim))) if not axes else _axes(axes, self.ndim)
        return self._new(jnp.transpose(self.shares, (0,) + tuple(a + 1 for a in axes)))

    @property
    def T(self) -> "Shared":
        return self.transpose()

    def broadcast_to(self, shape) -> "Shared":
        return self._new(_broadcast_shares(self.shares, tuple(shape)))


def _axes(axis, ndim: int) -> tuple[int, ...]:
    axis = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axis:
        if not -ndim <= a < ndim:
            raise ShareMismatchError(f"axis {a} is out of range for a shared value of rank {ndim}: pass an "
                                     f"axis in {-ndim}..{ndim - 1} (the party axis is not counted).")
        out.append(a % ndim)
    return tuple(out)


def _broadcast_shares(shares: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Broadcast ``shares[n, *s]`` against a public shape (party axis kept first)."""
    try:
        out = jnp.broadcast_shapes(tuple(shares.shape[1:]), tuple(shape))
    except ValueError as e:
        raise ShareMismatchError(
            f"shapes {tuple(shares.shape[1:])} and {tuple(shape)} do not broadcast: {e}"
        ) from None
    n = shares.shape[0]
    pad = len(out) - (shares.ndim - 1)
    shares = shares.reshape((n,) + (1,) * pad + tuple(shares.shape[1:]))
    return jnp.broadcast_to(shares, (n,) + tuple(out))


def _align(x: Shared, y: Shared) -> tuple[jax.Array, jax.Array]:
    """Shares of two operands broadcast to a common shape (party axis first)."""
    check_same_parties(x, y)
    try:
        out = jnp.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise ShareMismatchError(f"shared operands of shapes {x.shape} and {y.shape} do not broadcast.") from None
    return _broadcast_shares(x.shares, out), _broadcast_shares(y.shares, out)


def check_same_parties(x: Shared, y: Shared) -> None:
    """Raise :class:`~jaxmpc.errors.ShareMismatchError` unless ``x`` and ``y`` are shared under the
    same protocol (family, number of parties and ring)."""
    if x.n_parties != y.n_parties:
        raise ShareMismatchError(
            f"operands are shared among different numbers of parties ({x.n_parties} and "
            f"{y.n_parties}); share both with the same n_parties."
        )
    interface.common_protocol(x, y)


def common_fxp(x: Shared, y: Shared, op: str) -> FixedPoint | None:
    """The encoding of ``x op y`` for a linear op: both must have the same encoding."""
    a, b = x.fxp, y.fxp
    if a is None and b is None:
        return None
    if a is None or b is None or not a.same_static(b):
        raise ShareMismatchError(
            f"x {op} y: operands have different encodings ({a!r} and {b!r}); share both with the "
            "same FixedPoint."
        )
    pa, pb = a.concrete_precision(), b.concrete_precision()
    if pa is not None and pb is not None and pa != pb:
        raise ShareMismatchError(
            f"x {op} y: operands have different precisions ({pa} and {pb}); share both with the "
            "same FixedPoint."
        )
    if (pa is None or pb is None) and a is not b:  # traced: only jaxmpc.trace.diagnostics can check
        diagnostics.observe_precisions("precision match", a, b)
    return a


def concatenate(xs, axis: int = 0) -> Shared:
    """Concatenate shared values along a non-party axis (local)."""
    xs = list(xs)
    if not xs or not all(isinstance(x, Shared) for x in xs):
        raise InputTypeError("concatenate takes a non-empty sequence of Shared values.")
    fxp = xs[0].fxp
    for x in xs[1:]:
        check_same_parties(xs[0], x)
        fxp = common_fxp(xs[0], x, "concatenate")
    (ax,) = _axes(axis, xs[0].ndim)
    def others(shape):
        return shape[:ax] + shape[ax + 1:]

    for x in xs[1:]:
        if x.ndim != xs[0].ndim or others(x.shape) != others(xs[0].shape):
            raise ShareMismatchError(
                f"concatenate along axis {ax}: shapes {xs[0].shape} and {x.shape} must have the same "
                "rank and agree on every other axis.")
    return xs[0].like(jnp.concatenate([x.shares for x in xs], axis=ax + 1), fxp)


def share(key, x: Any, fxp: FixedPoint | None, n_parties: int = 2, protocol: str = "additive",
          ring: int = 64):
    r"""Secret-share a public array (or every array of a pytree) among ``n_parties``.

    :math:`v = \mathrm{encode}(x)`, then the family's ``share`` kernel; in the additive family
    parties 0..n-2 get uniform ring elements, the last gets :math:`v - \sum_{i<n-1} x_i`, so any
    n-1 shares are uniform and independent of ``x``.

    Args:
        key: a PRNG key (consumed; one draw for every leaf).
        x: a float/int array, or a pytree of them.
        fxp: the :class:`FixedPoint` encoding; ``None`` shares integers as plain ring elements.
        n_parties: number of parties, at least 2 (static).
        protocol: the protocol family's name (static; :func:`jaxmpc.protocols.interface.names`
            lists them). Every function on the result takes the protocol from it.
        ring: the ring width in bits, :math:`\mathbb{Z}_{2^{\ell}}` (static; the family says which
            it supports): 64 (``uint64`` words) or 32 (``uint32``). The encoding is bound to it
            (:meth:`FixedPoint.on_ring`), which checks the precision against the ring's headroom.
    Returns:
        A :class:`Shared` (or the same pytree of them) with shares ``uint64[n_parties, *shape]``
        (``uint32`` for ``ring=32``).

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> x = jaxmpc.share(jax.random.key(1), {"w": [0.5]}, jaxmpc.FixedPoint(2, 16), n_parties=3)
        >>> x["w"].shares.shape
        (3, 1)
    """
    ring_module.require_x64()
    check_key(key)
    proto = interface.protocol(protocol, n_parties, ring)
    if fxp is not None and not isinstance(fxp, FixedPoint):
        raise InputTypeError(
            f"fxp must be a jaxmpc.FixedPoint (or None for plain integers), got {fxp!r}. "
            "Example: jaxmpc.FixedPoint(base=10, precision=3)."
        )
    if fxp is not None:
        fxp = fxp.on_ring(proto.ring_bits)
    # a (nested) list of numbers is one array, as in numpy, also inside a pytree
    x = jax.tree_util.tree_map(lambda v: _nested_array(v) if _is_nested_numbers(v) else v, x,
                               is_leaf=_is_nested_numbers)
    if x is None:
        raise InputTypeError("share() got None; pass an array or a pytree of arrays.")
    leaves, treedef = jax.tree_util.tree_flatten(x)
    if not leaves:
        return x  # an empty container (e.g. a ReLU layer's params) stays empty
    for i, leaf in enumerate(leaves):
        name = "x" if len(leaves) == 1 else f"x (leaf {i})"
        check_numeric(leaf, name)
        if fxp is not None:
            fxp.check_values(leaf, name)
        elif not jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.integer):
            raise InputTypeError(f"{name}: fxp=None shares integers only, got dtype {jnp.asarray(leaf).dtype}.")
    words = ring_module.dtype(proto.ring_bits)
    values = [ring_module.const(jnp.asarray(leaf), words) if fxp is None else fxp.encode(leaf)
              for leaf in leaves]
    for leaf, v in zip(leaves, values):
        diagnostics.observe_encoding("share", leaf, v, fxp)  # nothing unless collecting
    shares = interface.family(proto.family).kernel("share")(key, values, proto.n_parties)
    out = [Shared(s, fxp, proto) for s in shares]
    return jax.tree_util.tree_unflatten(treedef, out)


def _is_nested_numbers(x) -> bool:
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all(_is_nested_numbers(e) for e in x)
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool)


def _nested_array(v) -> np.ndarray:
    try:
        return np.asarray(v)
    except ValueError as e:  # ragged
        raise InputTypeError(
            f"share: x must be an array or a rectangular nested list, got a ragged nested list "
            f"({str(e).split('. ', 1)[-1]}) Pad the rows to one length, or pass a list of arrays "
            "(a pytree: each array is shared on its own)."
        ) from None


def _is_shared(x) -> bool:
    return isinstance(x, Shared)


def reveal(x):
    r"""Open shared values to every party (the family's ``open`` kernel) and decode.

    Cost: the family's ``open``; additive: 1 round, each party sends :math:`w (n-1)` bytes per
    element (:math:`w = \ell/8`).

    Args:
        x: a :class:`Shared` or a pytree containing them.
    Returns:
        float64 arrays (int64 for plain-integer shares, the ring's signed view), same structure.
    """
    def _reveal(s):
        if not isinstance(s, Shared):
            raise InputTypeError(f"reveal() takes Shared values, got {type(s).__name__}.")
        fam = interface.family(s.protocol.family)
        accounting.record("reveal", n_parties=s.n_parties, rounds=1, elements_opened=s.size,
                          bits_per_element=s.protocol.ring_bits, recipients=fam.open_recipients)
        v = fam.kernel("open")(s.shares)
        return ring.to_signed(v).astype(jnp.int64) if s.fxp is None else s.fxp.decode(v)

    return jax.tree_util.tree_map(_reveal, x, is_leaf=_is_shared)
