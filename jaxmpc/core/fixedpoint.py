r"""Fixed-point encoding of real numbers into the ring: :math:`v = \mathrm{round}(x \cdot b^p) \bmod 2^{\ell}`.

``FixedPoint(base, precision)`` fixes the scale :math:`s = b^p`. The base (2 or 10) and the rounding
mode change the program and are static; the precision is array data, so one compiled function can be
``jax.vmap``-ped over precisions.

Rings. A ``FixedPoint`` encodes into one ring :math:`\mathbb{Z}_{2^\ell}`, :math:`\ell` = 64 by
default; :meth:`FixedPoint.on_ring` gives the same encoding on another ring (``jaxmpc.share(...,
ring=32)`` binds it), and :meth:`FixedPoint.encode` returns that ring's words (``uint32`` or
``uint64``).

Headroom. A product :math:`xy` is held at scale :math:`s^2` before truncation, and the
dealer-assisted truncation is exact while :math:`|xy| s^2 < 2^{\ell - 2}`. :func:`share` checks
:math:`|x| s^2 < 2^{\ell - 2}`: room for one product with a factor of magnitude at most 1. Products
of two larger values (and sums of many products in a matmul) must satisfy the bound themselves;
that is the user's responsibility, since shared values cannot be inspected. Hence
:math:`s^2 < 2^{\ell - 2}` (:func:`max_precision`): on :math:`\mathbb{Z}_{2^{64}}` base 10 allows
precision 0..9 and base 2 allows 0..30; on :math:`\mathbb{Z}_{2^{32}}` base 10 allows 0..4 and
base 2 allows 0..14 (Falcon's 13 fractional bits fit).

The precision travels inside a pytree as a boolean bit-vector: the 64 binary digits of the precision
as an int64 (two's complement), so any integer given is held exactly (an unsigned 64-bit precision
above :math:`2^{63} - 1` is clamped to it: still out of range, never wrapped), and a last flag, set
when it is out of range. Booleans add as logical OR, so ``optax.apply_updates(params, updates)`` --
which adds parameters and updates leaf by leaf -- keeps a shared parameter's encoding intact instead
of doubling its precision.

Out-of-range precisions. A concrete precision outside ``0..max_precision(base)`` raises
:class:`~jaxmpc.errors.EncodingError`. A traced one (under ``jit`` / ``vmap``) cannot raise, so for
such a run :attr:`FixedPoint.valid` is false, :attr:`FixedPoint.scale` is NaN and :meth:`decode`
(hence :func:`jaxmpc.reveal`) returns NaN; encoding and truncations use the scale 1 meanwhile (no
ring arithmetic on an undefined scale), and :mod:`jaxmpc.trace.diagnostics` counts the run as a failure
under the call name ``"precision range"`` (observed where the ``FixedPoint`` is made). The other
runs of a sweep are unaffected, and one compiled program still serves every precision.
"""
from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import ring
from ..errors import EncodingError, InputTypeError, ShareMismatchError

_BITS = 64  # precision is stored as the 64 binary digits of an int64 (any integer, no wrap) ...
_WIDTH = _BITS + 1  # ... and one flag: out of range (so checking validity costs one element)
_ROUNDINGS = ("nearest", "trunc")
_TRACED_PRECISION_OBSERVERS: list = []  # see on_traced_precision
HEADROOM_BITS = 62  # on Z_2^64, |x| * s^2 must stay below 2^62 (the exact range of dealer truncation)


def headroom_bits(ring_bits: int = 64) -> int:
    r""":math:`\ell - 2`: values at scale :math:`s^2` must stay below :math:`2^{\ell - 2}` in
    :math:`\mathbb{Z}_{2^\ell}` (the exact range of dealer truncation)."""
    return int(ring_bits) - 2


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def max_precision(base: int, ring_bits: int = 64) -> int:
    r"""The largest precision whose squared scale leaves room in :math:`\mathbb{Z}_{2^\ell}`:
    :math:`s^2 < 2^{\ell - 2}`."""
    return int(math.floor((headroom_bits(ring_bits) - 1e-9) / (2 * math.log2(base))))


def _as_int64(p: jax.Array) -> jax.Array:
    """A traced integer precision as int64 without wrapping (unsigned values above 2^63 - 1 clamp)."""
    if p.dtype == jnp.uint64:
        p = jnp.minimum(p, jnp.uint64(np.iinfo(np.int64).max))
    return p.astype(jnp.int64)


def _check_range(base: int, precision: int, ring_bits: int = 64) -> None:
    top = max_precision(base, ring_bits)
    if not 0 <= precision <= top:
        raise EncodingError(
            f"FixedPoint(base={base}, precision={precision}) does not fit the ring Z_2^{ring_bits}: "
            f"the product of two encoded values needs scale^2 < 2^{headroom_bits(ring_bits)}, so "
            f"base {base} allows precision 0..{top} there. Choose a precision in that range"
            + (" or a wider ring (ring=64)." if ring_bits < 64 else ".")
        )


def on_traced_precision(observe) -> None:
    """Register ``observe(fxp)``, called whenever a :class:`FixedPoint` is made from a traced
    precision (which cannot be range-checked while tracing). :mod:`jaxmpc.trace.diagnostics`
    registers its ``"precision range"`` count here, so that core does not import trace."""
    if observe not in _TRACED_PRECISION_OBSERVERS:
        _TRACED_PRECISION_OBSERVERS.append(observe)


@jax.tree_util.register_pytree_node_class
class FixedPoint:
    r"""Fixed-point encoding with scale :math:`s = \text{base}^\text{precision}`.

    Args:
        base: 2 or 10 (static). PySyft's default is base 10, precision 3.
        precision: number of fractional digits in ``base``; a Python int or an integer array (a
            JAX tracer under ``vmap``). Base 10 allows 0..9, base 2 allows 0..30: a concrete value
            outside raises, a traced one makes the run decode to NaN (see the module notes).
        rounding: ``"nearest"`` (default) rounds to the nearest ring element; ``"trunc"`` truncates
            toward zero like PySyft (0.0738 at precision 3 becomes 73, not 74).

    Example:
        >>> import jax; jax.config.update("jax_enable_x64", True)
        >>> fxp = FixedPoint(base=10, precision=3)
        >>> int(fxp.encode(0.1)), float(fxp.decode(fxp.encode(-1.5)))
        (100, -1.5)
    """

    def __init__(self, base: int = 10, precision: Any = 3, rounding: str = "nearest"):
        ring.require_x64()
        if isinstance(base, bool) or not isinstance(base, (int, np.integer)) or base not in (2, 10):
            raise InputTypeError(
                f"FixedPoint(base=...) must be the int 2 or 10, got {base!r}. Use base=10 (PySyft, "
                "precision counts decimal digits) or base=2 (precision counts fractional bits)."
            )
        if not isinstance(rounding, str) or rounding not in _ROUNDINGS:
            raise InputTypeError(
                f"FixedPoint(rounding=...) must be one of {_ROUNDINGS}, got {rounding!r}."
            )
        p = precision
        if isinstance(p, jax.core.Tracer):
            if not jnp.issubdtype(p.dtype, jnp.integer) or p.ndim != 0:
                raise InputTypeError(
                    f"FixedPoint(precision=...) must be a scalar integer, got a traced {p.dtype}"
                    f"{list(p.shape)}; vmap over a 1-d integer array of precisions instead."
                )
        else:
            arr = np.asarray(p)
            if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer) or arr.ndim != 0:
                raise InputTypeError(
                    f"FixedPoint(precision=...) must be a scalar integer (e.g. 3), got {p!r} of "
                    f"dtype {arr.dtype}. To sweep precisions, vmap over an integer array."
                )
            _check_range(int(base), int(arr))
        self.base = int(base)
        self.rounding = rounding
        self.ring_bits = 64
        if isinstance(p, jax.core.Tracer):
            p = _as_int64(p)
            bad = (p < 0) | (p > max_precision(int(base)))
            digits = ((p >> jnp.arange(_BITS, dtype=jnp.int64)) & 1).astype(bool)
            self._bits = jnp.concatenate([digits, bad[None]])
            for observe in _TRACED_PRECISION_OBSERVERS:  # cannot raise: counted when collecting
                observe(self)
        else:  # numpy keeps a concrete precision concrete inside jit, so it can be checked
            digits = ((np.int64(int(np.asarray(p))) >> np.arange(_BITS, dtype=np.int64)) & 1).astype(bool)
            self._bits = np.concatenate([digits, [False]])  # in range (checked above)

    # pytree: the precision bits are data; base, rounding and ring are static
    def tree_flatten(self):
        return (self._bits,), (self.base, self.rounding, self.ring_bits)

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.base, obj.rounding, obj.ring_bits = aux
        (obj._bits,) = children
        return obj

    def on_ring(self, ring_bits: int) -> "FixedPoint":
        r"""This encoding on :math:`\mathbb{Z}_{2^{\ell}}`, :math:`\ell` = ``ring_bits`` (32 or 64):
        ``self`` when it is already there.

        Raises :class:`~jaxmpc.errors.EncodingError` for a concrete precision beyond the ring's
        headroom (:func:`max_precision`); a traced one makes the run invalid (decodes to NaN) and
        is counted under ``"precision range"``, as an out-of-range precision is.
        """
        ring_bits = int(ring_bits)
        ring.dtype(ring_bits)  # a ring with words
        if ring_bits == self.ring_bits:
            return self
        obj = object.__new__(FixedPoint)
        obj.base, obj.rounding, obj.ring_bits = self.base, self.rounding, ring_bits
        p = self.concrete_precision()
        if p is not None:
            _check_range(self.base, p, ring_bits)
            obj._bits = self._bits
            return obj
        top = max_precision(self.base, ring_bits)
        bad = jnp.asarray(self._bits[..., _BITS]) | (self.precision > top) | (self.precision < 0)
        obj._bits = jnp.concatenate([jnp.asarray(self._bits[..., :_BITS]), bad[..., None]], axis=-1)
        for observe in _TRACED_PRECISION_OBSERVERS:
            observe(obj)
        return obj

    def _check_rank(self, what: str) -> None:
        """A FixedPoint used by encode / decode / protocols holds one precision (bits ``[65]``) or,
        for decoding only, a batch of them in front; anything else came from a mapped axis."""
        shape = tuple(self._bits.shape)
        if len(shape) < 1 or shape[-1] != _WIDTH or (len(shape) > 1 and what != "decode"):
            batch = f"a batch of precisions of shape {tuple(shape[:-1])}" if len(shape) > 1 and \
                shape[-1] == _WIDTH else f"precision bits of shape {tuple(shape)} (expected ({_WIDTH},))"
            raise ShareMismatchError(
                f"FixedPoint.{what}: this encoding holds {batch}: it went through jax.vmap with its "
                "precision mapped (a Shared's party axis, or the wrong axis, was vmapped). Batch "
                "shared values with jaxmpc.vmap (it maps the first non-party axis and leaves the "
                "encoding alone), or compute on them inside the vmapped function."
            )

    @property
    def precision(self) -> jax.Array:
        """The precision as an int64 scalar (array data), exactly as given (even out of range)."""
        weights = jnp.left_shift(jnp.int64(1), jnp.arange(_BITS, dtype=jnp.int64))  # bit 63: -2^63
        return jnp.sum(jnp.where(self._bits[..., :_BITS], weights, 0), axis=-1, dtype=jnp.int64)

    @property
    def valid(self) -> jax.Array:
        """Whether the precision is in ``0..max_precision(base, ring_bits)`` (a bool array; False only
        for a traced out-of-range precision, since a concrete one raises)."""
        return ~jnp.asarray(self._bits[..., _BITS])

    def _exact_scale(self) -> jax.Array:
        """``base**precision`` from the low binary digits: exact where :attr:`valid`, finite always."""
        n = max_precision(self.base).bit_length()  # digits a valid precision can have
        factors = np.array([float(self.base) ** (1 << i) for i in range(n)])
        return jnp.prod(jnp.where(self._bits[..., :n], factors, 1.0), axis=-1)

    def _ring_float_scale(self) -> jax.Array:
        """The scale used for ring arithmetic: exact where valid, 1 where not (decode gives NaN)."""
        return jnp.where(self.valid, self._exact_scale(), 1.0)

    @property
    def scale(self) -> jax.Array:
        """The scale ``base**precision`` as float64, exact on every backend; NaN for an
        out-of-range (traced) precision.

        :math:`b^p = \\prod_{i: p_i = 1} b^{2^i}` over the binary digits :math:`p_i` of the
        precision: a product of exact float64 constants whose partial products divide
        :math:`b^p < 2^{62}`, so every rounding is exact. (``jnp.power`` is not exact everywhere:
        on a GPU ``2.0 ** 11.0`` came out as 2047.9999999999998, which truncates to 2047 in the ring.)
        """
        return jnp.where(self.valid, self._exact_scale(), jnp.nan)

    @property
    def dtype(self):
        """The word type of this encoding's ring (``uint64`` or ``uint32``)."""
        return ring.dtype(self.ring_bits)

    @property
    def ring_scale(self) -> jax.Array:
        """The scale as a ring element (of this encoding's ring); 1 for an out-of-range (traced)
        precision."""
        self._check_rank("ring_scale")
        return self._ring_float_scale().astype(jnp.int64).astype(self.dtype)

    def same_static(self, other: "FixedPoint") -> bool:
        return (self.base == other.base and self.rounding == other.rounding
                and self.ring_bits == other.ring_bits)

    def concrete_precision(self):
        """The precision as a Python int, or None when it is traced (or a batch of precisions)."""
        if _is_concrete(self._bits) and np.ndim(self._bits) == 1:
            digits = np.asarray(self._bits[:_BITS], np.int64)
            return int(np.sum(digits << np.arange(_BITS, dtype=np.int64)))
        return None

    def __repr__(self) -> str:
        p = self.concrete_precision()
        return f"FixedPoint(base={self.base}, precision={p if p is not None else '<traced>'}" + (
            ", rounding='trunc'" if self.rounding == "trunc" else "") + (
            f", ring={self.ring_bits})" if self.ring_bits != 64 else ")")

    def encode(self, x, name: str = "x") -> jax.Array:
        r"""Encode reals into the ring: :math:`v = \mathrm{round}(x s) \bmod 2^{\ell}` (via int64).

        Args:
            x: float array of any shape (integers are accepted and converted).
            name: what to call ``x`` in error messages.
        Returns:
            an array of the ring's words (:attr:`dtype`) of the same shape.
        Raises:
            :class:`~jaxmpc.errors.InputTypeError` for non-numeric or boolean data;
            :class:`~jaxmpc.errors.EncodingError` for NaN, inf or too large values when ``x`` is
            concrete (see :meth:`check_values`; traced values cannot be checked).
        """
        check_numeric(x, name)
        self._check_rank("encode")
        self.check_values(x, name)
        y = jnp.asarray(x, jnp.float64) * self._ring_float_scale()
        y = jnp.round(y) if self.rounding == "nearest" else jnp.trunc(y)
        return ring.from_signed(y.astype(jnp.int64), self.dtype)

    def decode(self, v) -> jax.Array:
        """Decode ring elements to float64: ``signed(v) / s``; NaN where the precision is out of
        range (a traced one; see the module notes).

        A FixedPoint holding a batch of precisions (bits ``[*batch, 65]``, as ``jaxmpc.vmap``
        returns for a precision swept inside) decodes ``v`` whose leading axes are that batch.
        """
        self._check_rank("decode")
        scale = self.scale
        v = jnp.asarray(v)
        if scale.ndim:
            if tuple(v.shape[:scale.ndim]) != tuple(scale.shape):
                raise ShareMismatchError(
                    f"FixedPoint.decode: the encoding holds a batch of {tuple(scale.shape)} "
                    f"precisions, but the value has shape {tuple(v.shape)}; its leading axes must be "
                    "that batch (as jaxmpc.vmap returns them).")
            scale = scale.reshape(scale.shape + (1,) * (v.ndim - scale.ndim))
        return ring.to_signed(v).astype(jnp.float64) / scale

    def check_values(self, x, name: str = "x") -> None:
        """Raise :class:`EncodingError` for NaN, inf, or values with no room for one product.

        Only concrete arrays are checked (traced values cannot be inspected before running).
        """
        if isinstance(x, jax.core.Tracer):
            return
        arr = np.asarray(x, dtype=np.float64)
        if arr.size == 0:
            return
        if not np.all(np.isfinite(arr)):
            raise EncodingError(
                f"{name} contains NaN or infinite values, which have no fixed-point encoding. "
                "Replace them (e.g. jnp.nan_to_num) before sharing."
            )
        p = self.concrete_precision()
        if p is None:
            return
        _check_range(self.base, p, self.ring_bits)
        s = float(self.base) ** p
        room = headroom_bits(self.ring_bits)
        limit = 2.0**room / (s * s)
        big = float(np.max(np.abs(arr)))
        if big >= limit:
            raise EncodingError(
                f"{name} has magnitude {big:.4g}, too large for {self!r}: one product of encoded "
                f"values must stay below 2^{room}, so |{name}| must be < {limit:.4g}. "
                "Rescale the data or lower the precision" + (" (or use a wider ring)." if room < 62 else ".")
            )


def check_numeric(x, name: str = "x"):
    """Return ``x`` as an array, or raise :class:`InputTypeError` for non-numeric or boolean data."""
    if isinstance(x, jax.core.Tracer):
        dtype = x.dtype
    else:
        try:
            dtype = np.asarray(x).dtype
        except Exception as e:  # noqa: BLE001 - any conversion failure is bad input
            raise InputTypeError(f"{name} must be a numeric array, got {type(x).__name__}: {e}")
    if dtype == bool or not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
        raise InputTypeError(
            f"{name} must be a real numeric array (float or int), got dtype {dtype}. "
            + ("Convert booleans explicitly, e.g. x.astype(float)." if dtype == bool else
               "Convert it to float first.")
        )
    return x
