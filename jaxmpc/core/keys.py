r"""PRNG keys: checks, and ``splitmix64``, a fast JAX PRNG implementation for the dealer.

Keys are JAX PRNG keys, explicit and never reused. Any key works (``jax.random.key(0)`` is
threefry), but the dealer draws several 64-bit words per element and per protocol call, so the PRNG
is a first-order cost. :func:`key` makes keys of :data:`SPLITMIX64`, a PRNG implementation registered
with JAX (``jax.extend.random.define_prng_impl``): ``jax.random.split`` / ``bits`` / ``fold_in`` and
JAX's key-reuse checker work on it unchanged.

A key is 64 bits, two uint32 words :math:`(k_0, k_1)`, read as the seed :math:`s = 2^{32} k_0 + k_1`.

Bulk words (``jax.random.bits``): SplitMix64 (Steele, Lea & Flood, OOPSLA 2014),
:math:`w_i = \mathrm{mix}(s + (i+1)\gamma)` with :math:`\gamma = \lfloor 2^{64}/\varphi \rfloor`
and the finaliser :math:`\mathrm{mix}(z) = h_3 h_2 h_1 (z)`,
:math:`h_1(z) = (z \oplus z \gg 30) c_1`, :math:`h_2(z) = (z \oplus z \gg 27) c_2`,
:math:`h_3(z) = z \oplus z \gg 31`: two 64-bit multiplies per word. ``mix`` is a bijection, so
one word gives away :math:`s`, and with it the whole stream: a key's words belong to whoever may
know the key. :func:`jaxmpc.core.ring.draw` gives every party its own key for that reason.

Derived keys (``jax.random.split`` / ``fold_in``): Threefry-2x32 with 20 rounds (Salmon et al.,
"Parallel random numbers: as easy as 1, 2, 3", SC 2011; the block function of JAX's default PRNG),
keyed by :math:`(k_0, k_1)`: child :math:`i` of a split is
:math:`\mathrm{threefry}_{k}(i, \tau_{\text{split}})` and ``fold_in(key, d)`` is
:math:`\mathrm{threefry}_{k}(d, \tau_{\text{fold}})`. Threefry is a keyed permutation built from
the Threefish block cipher's rounds; as a PRF, outputs do not determine the key, so a child key
(and every word drawn from it) tells nothing about its parent or its siblings. SplitMix64 alone
would not do here: its children were consecutive words of one invertible stream, so one child key
gave away the parent and every sibling. A derivation costs about 100 32-bit operations per key,
made once per split and stored (keys are few; words are many).

Neither function is certified cryptographic: this is a simulator, and what matters is that a
party's view does not *determine* another party's randomness, which ``tests/test_privacy.py``
checks by attacking it.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend.random import define_prng_impl

import numpy as np

from . import ring
from ..errors import EncodingError, InputTypeError

_U64 = jnp.uint64
_GAMMA = 0x9E3779B97F4A7C15
_C1, _C2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_TAG_SEED = 0x3C6EF372FE94F82B
_TAG_SPLIT, _TAG_FOLD = 0xA54FF53A, 0x510E527F  # Threefry's second input word, per derivation
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA


def _mix(z: jax.Array) -> jax.Array:
    z = (z ^ (z >> _U64(30))) * _U64(_C1)
    z = (z ^ (z >> _U64(27))) * _U64(_C2)
    return z ^ (z >> _U64(31))


def _to_seed(data: jax.Array) -> jax.Array:
    """uint32[2] key data -> uint64 seed."""
    return (data[0].astype(_U64) << _U64(32)) | data[1].astype(_U64)


def _to_data(seed: jax.Array) -> jax.Array:
    """uint64 seeds -> uint32[..., 2] key data."""
    return jnp.stack([(seed >> _U64(32)).astype(jnp.uint32), seed.astype(jnp.uint32)], axis=-1)


def _offsets(count: int) -> jax.Array:
    """:math:`(i+1)\\gamma` for the ``count`` words of a stream."""
    return jnp.arange(1, count + 1, dtype=_U64) * _U64(_GAMMA)


def _stream(seed: jax.Array, count: int) -> jax.Array:
    return _mix(seed + _offsets(count))


def threefry(k0: jax.Array, k1: jax.Array, x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32, 20 rounds, elementwise on broadcastable ``uint32`` arrays: the block
    :math:`(x_0, x_1)` encrypted under the key :math:`(k_0, k_1)`.

    The same function as JAX's ``threefry2x32`` primitive (``tests/test_keys.py`` compares them),
    written as plain elementwise operations so that XLA fuses it into one loop (the primitive
    lowers to a rolled loop on CPU) and :mod:`jaxmpc.run.lanes` evaluates it in its layout.
    """
    u32 = jnp.uint32
    k0, k1, x0, x1 = (jnp.asarray(v, u32) for v in (k0, k1, x0, x1))
    ks = (k0, k1, k0 ^ k1 ^ u32(_PARITY))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = ((x1 << u32(r)) | (x1 >> u32(32 - r))) ^ x0
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + u32(i + 1)
    return x0, x1


def derive(data: jax.Array, counters: jax.Array, tag: int) -> jax.Array:
    """Threefry of ``(counters, tag)`` under the key ``data`` (``uint32[..., 2]``, broadcast
    against ``counters``): ``uint32[..., 2]`` key data of the derived keys."""
    y0, y1 = threefry(data[..., 0], data[..., 1], counters, jnp.uint32(tag))
    return jnp.stack([y0, y1], axis=-1)


def _seed_impl(seed: jax.Array) -> jax.Array:
    return _to_data(_mix(lax.convert_element_type(seed, jnp.int64).astype(_U64) ^ _U64(_TAG_SEED)))


def _split_impl(key: jax.Array, shape) -> jax.Array:
    # Stored once (ring.materialize): otherwise XLA fuses the key's derivation into every kernel
    # that draws from a descendant key, and a training step recomputes its whole key tree inside
    # each of them. The values are unchanged.
    count = math.prod(shape)
    children = derive(key[None], jnp.arange(count, dtype=jnp.uint32), _TAG_SPLIT)
    return ring.materialize(children.reshape(tuple(shape) + (2,)))


def _fold_in_impl(key: jax.Array, data) -> jax.Array:
    return derive(key, lax.convert_element_type(data, jnp.uint32), _TAG_FOLD)


def _bits_impl(key: jax.Array, bit_width: int, shape) -> jax.Array:
    words = _stream(_to_seed(key), math.prod(shape)).reshape(shape)
    return words if bit_width == 64 else words.astype(jnp.dtype(f"uint{bit_width}"))


SPLITMIX64 = define_prng_impl(
    key_shape=(2,), seed=_seed_impl, split=_split_impl, random_bits=_bits_impl,
    fold_in=_fold_in_impl, name="splitmix64", tag="smx")


def key(seed) -> jax.Array:
    """A typed PRNG key of the fast :data:`SPLITMIX64` implementation (needs ``jax_enable_x64``).

    ``seed`` is an integer scalar in :math:`[-2^{63}, 2^{63})` (a Python or numpy integer, or an
    integer array scalar; a traced one under ``vmap``). Anything else raises
    :class:`~jaxmpc.errors.InputTypeError` (or :class:`~jaxmpc.errors.EncodingError` when out of
    range) before a key is made.

    Example:
        >>> import jax; jax.config.update("jax_enable_x64", True)
        >>> import jaxmpc
        >>> k1, k2 = jax.random.split(jaxmpc.key(0))
        >>> jax.random.bits(k1, (2,), jax.numpy.uint64).dtype
        dtype('uint64')
    """
    _check_seed(seed)
    return jax.random.key(seed, impl=SPLITMIX64)


def _check_seed(seed) -> None:
    dtype = getattr(seed, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        raise InputTypeError("jaxmpc.key(seed) takes an integer seed, got a PRNG key: it already is "
                             "a key; use it directly, or jax.random.split it.")
    if isinstance(seed, jax.core.Tracer):
        if not jnp.issubdtype(seed.dtype, jnp.integer) or seed.ndim != 0:
            raise InputTypeError(f"jaxmpc.key(seed): a traced seed must be an integer scalar, got "
                                 f"{seed.dtype}{list(seed.shape)}; vmap over a 1-d integer array.")
        return
    arr = np.asarray(seed) if isinstance(seed, (int, np.integer)) or dtype is not None else None
    if isinstance(seed, bool) or arr is None or arr.dtype == bool or arr.ndim != 0 or not (
            np.issubdtype(arr.dtype, np.integer) or isinstance(seed, int)):
        raise InputTypeError(
            f"jaxmpc.key(seed) takes one integer seed (e.g. jaxmpc.key(0)), got {seed!r}"
            + (f" of dtype {arr.dtype} and shape {arr.shape}" if arr is not None else "")
            + ". For many keys, split one: jax.random.split(jaxmpc.key(0), n)."
        )
    if not -(2**63) <= int(seed) < 2**63:
        raise EncodingError(f"jaxmpc.key(seed): the seed must lie in [-2^63, 2^63) (64 bits), got {seed}.")


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
        f"{name} must be one JAX PRNG key, e.g. jaxmpc.key(0) or jax.random.key(0) (or a slice of "
        f"jax.random.split), got {got}. Interactive operations take a fresh key per call; split "
        "keys, never reuse them."
    )
