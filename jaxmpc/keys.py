"""Key checks and named splitting. A reused key is a reused mask or triple: split, never reuse."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .errors import InputTypeError


def check_key(key, name: str = "key") -> jax.Array:
    """Return ``key`` if it is a JAX PRNG key (typed ``jax.random.key`` or raw ``uint32[2]``).

    Raises :class:`InputTypeError` otherwise, before any work is done.
    """
    dtype = getattr(key, "dtype", None)
    shape = getattr(key, "shape", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) and shape == ():
        return key
    if dtype == jnp.uint32 and shape == (2,):
        return key
    got = f"{type(key).__name__}" + (f" of dtype {dtype} and shape {shape}" if dtype is not None else "")
    raise InputTypeError(
        f"{name} must be one JAX PRNG key, e.g. jax.random.key(0) (or a slice of jax.random.split), "
        f"got {got}. Interactive operations take a fresh key per call; split keys, never reuse them."
    )


def split(key, *names: str) -> tuple:
    """Split ``key`` into one sub-key per name (names document the purpose at the call site)."""
    return tuple(jax.random.split(key, len(names)))
