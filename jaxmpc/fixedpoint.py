r"""Fixed-point encoding of real numbers into the ring: :math:`v = \mathrm{round}(x \cdot b^p) \bmod 2^{64}`.

``FixedPoint(base, precision)`` fixes the scale :math:`s = b^p`. The base (2 or 10) and the rounding
mode change the program and are static; the precision is array data, so one compiled function can be
``jax.vmap``-ped over precisions.

Headroom. A product :math:`xy` is held at scale :math:`s^2` before truncation, and the
dealer-assisted truncation is exact while :math:`|xy| s^2 < 2^{62}`. :func:`share` checks
:math:`|x| s^2 < 2^{62}`: room for one product with a factor of magnitude at most 1. Products of two
larger values (and sums of many products in a matmul) must satisfy the bound themselves; that is
the user's responsibility, since shared values cannot be inspected. Hence :math:`s^2 < 2^{62}`:
base 10 allows precision 0..9 and base 2 allows 0..30.

The precision travels inside a pytree as a small boolean bit-vector (its binary digits). Booleans add
as logical OR, so ``optax.apply_updates(params, updates)`` -- which adds parameters and updates leaf by
leaf -- keeps a shared parameter's encoding intact instead of doubling its precision.
"""
from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import ring
from .errors import EncodingError, InputTypeError

_BITS = 8  # precision is stored as 8 binary digits (0..255; the ring allows at most 30)
_ROUNDINGS = ("nearest", "trunc")
HEADROOM_BITS = 62  # |x| * s^2 must stay below 2^62 (the exact range of dealer truncation)


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def max_precision(base: int) -> int:
    """The largest precision whose squared scale leaves room in the ring: ``s^2 < 2^62``."""
    return int(math.floor((HEADROOM_BITS - 1e-9) / (2 * math.log2(base))))


@jax.tree_util.register_pytree_node_class
class FixedPoint:
    r"""Fixed-point encoding with scale :math:`s = \text{base}^\text{precision}`.

    Args:
        base: 2 or 10 (static). PySyft's default is base 10, precision 3.
        precision: number of fractional digits in ``base``; a Python int or an integer array (a
            JAX tracer under ``vmap``). Base 10 allows 0..9, base 2 allows 0..30.
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
            top = max_precision(int(base))
            if not 0 <= int(arr) <= top:
                raise EncodingError(
                    f"FixedPoint(base={base}, precision={int(arr)}) does not fit the ring: the "
                    f"product of two encoded values needs scale^2 < 2^{HEADROOM_BITS}, so base {base}"
                    f" allows precision 0..{top}. Choose a precision in that range."
                )
        self.base = int(base)
        self.rounding = rounding
        if isinstance(p, jax.core.Tracer):
            p = p.astype(jnp.int32)
            self._bits = ((p >> jnp.arange(_BITS, dtype=jnp.int32)) & 1).astype(bool)
        else:  # numpy keeps a concrete precision concrete inside jit, so it can be checked
            self._bits = ((int(np.asarray(p)) >> np.arange(_BITS)) & 1).astype(bool)

    # pytree: the precision bits are data, base and rounding are static
    def tree_flatten(self):
        return (self._bits,), (self.base, self.rounding)

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.base, obj.rounding = aux
        (obj._bits,) = children
        return obj

    @property
    def precision(self) -> jax.Array:
        """The precision as an int32 scalar (array data)."""
        weights = 1 << jnp.arange(_BITS, dtype=jnp.int32)
        return jnp.sum(jnp.where(self._bits, weights, 0), axis=-1)

    @property
    def scale(self) -> jax.Array:
        """The scale ``base**precision`` as float64, exact on every backend.

        :math:`b^p = \\prod_{i: p_i = 1} b^{2^i}` over the binary digits :math:`p_i` of the
        precision: a product of exact float64 constants whose partial products divide
        :math:`b^p < 2^{62}`, so every rounding is exact. (``jnp.power`` is not exact everywhere:
        on a GPU ``2.0 ** 11.0`` came out as 2047.9999999999998, which truncates to 2047 in the ring.)
        """
        factors = np.array([float(self.base) ** (1 << i) for i in range(_BITS)])
        return jnp.prod(jnp.where(self._bits, factors, 1.0), axis=-1)

    @property
    def ring_scale(self) -> jax.Array:
        """The scale as a ring element (uint64)."""
        return self.scale.astype(jnp.int64).astype(jnp.uint64)

    def same_static(self, other: "FixedPoint") -> bool:
        return self.base == other.base and self.rounding == other.rounding

    def concrete_precision(self):
        """The precision as a Python int, or None when it is traced."""
        if _is_concrete(self._bits):
            return int(np.sum(np.asarray(self._bits) << np.arange(_BITS)))
        return None

    def __repr__(self) -> str:
        p = self.concrete_precision()
        return f"FixedPoint(base={self.base}, precision={p if p is not None else '<traced>'}" + (
            ", rounding='trunc')" if self.rounding == "trunc" else ")"
        )

    def encode(self, x, name: str = "x") -> jax.Array:
        r"""Encode reals into the ring: :math:`v = \mathrm{round}(x s) \bmod 2^{64}` (via int64).

        Args:
            x: float array of any shape (integers are accepted and converted).
            name: what to call ``x`` in error messages.
        Returns:
            ``uint64`` array of the same shape.
        Raises:
            :class:`~jaxmpc.errors.InputTypeError` for non-numeric or boolean data;
            :class:`~jaxmpc.errors.EncodingError` for NaN, inf or too large values when ``x`` is
            concrete (see :meth:`check_values`; traced values cannot be checked).
        """
        check_numeric(x, name)
        self.check_values(x, name)
        y = jnp.asarray(x, jnp.float64) * self.scale
        y = jnp.round(y) if self.rounding == "nearest" else jnp.trunc(y)
        return ring.from_signed(y.astype(jnp.int64))

    def decode(self, v) -> jax.Array:
        """Decode ring elements to float64: ``signed(v) / s``."""
        return ring.to_signed(v).astype(jnp.float64) / self.scale

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
        s = float(self.base) ** p
        limit = 2.0**HEADROOM_BITS / (s * s)
        big = float(np.max(np.abs(arr)))
        if big >= limit:
            raise EncodingError(
                f"{name} has magnitude {big:.4g}, too large for {self!r}: one product of encoded "
                f"values must stay below 2^{HEADROOM_BITS}, so |{name}| must be < {limit:.4g}. "
                "Rescale the data or lower the precision."
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
