r"""The rings :math:`\mathbb{Z}_{2^\ell}` on unsigned words: random elements, signed view, party sums.

A share is an array of ``uint32`` (:math:`\ell = 32`) or ``uint64`` (:math:`\ell = 64`) words;
arithmetic wraps modulo :math:`2^\ell`, which is exactly the ring, so the ring of an array is its
dtype (:func:`bits_of`) and every function here works in the ring of its arguments. Constants enter
through :func:`word` (a Python integer reduced into an array's ring). This is the only module that
bitcasts between the unsigned (ring) and signed (two's complement) views.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from ..errors import InputTypeError, X64Error

RING_BITS = 64  # the default ring
DTYPE = jnp.uint64
SIGNED = jnp.int64
BYTES = 8  # bytes of one element of the default ring on the wire
RINGS = (32, 64)  # the ring widths with a word type
_UNSIGNED = {32: np.dtype(np.uint32), 64: np.dtype(np.uint64)}
_SIGNED = {32: np.dtype(np.int32), 64: np.dtype(np.int64)}


def dtype(bits: int = RING_BITS) -> np.dtype:
    r"""The word type of :math:`\mathbb{Z}_{2^{bits}}`: ``uint32`` or ``uint64``."""
    if bits not in _UNSIGNED:
        raise InputTypeError(f"the ring Z_2^{bits} has no word type here: ring widths are {RINGS}.")
    return _UNSIGNED[bits]


def bits_of(v) -> int:
    """The ring width of the ring array ``v`` (from its dtype: 32 or 64)."""
    dt = np.dtype(getattr(v, "dtype", None))
    for bits, u in _UNSIGNED.items():
        if dt == u:
            return bits
    raise InputTypeError(f"ring elements are uint32 or uint64 words, got dtype {dt}.")


def is_ring_array(v) -> bool:
    """Whether ``v`` is an array of ring words (``uint32`` or ``uint64``)."""
    return np.dtype(getattr(v, "dtype", np.float64)) in _UNSIGNED.values()


def word(c, like) -> jax.Array:
    r"""The integer ``c`` (a Python int, possibly negative or above the ring) as a scalar of the
    ring of ``like`` (an array or a dtype), reduced modulo :math:`2^\ell`."""
    dt = np.dtype(getattr(like, "dtype", like))
    return jnp.asarray(int(c) % (1 << (8 * dt.itemsize)), dt)


def require_x64() -> None:
    """Raise :class:`X64Error` unless ``jax_enable_x64`` is on (without it uint64 becomes uint32)."""
    if not jax.config.read("jax_enable_x64"):
        raise X64Error(
            "jaxmpc computes in the ring Z_2^64 and needs 64-bit types, but jax_enable_x64 is off, "
            "so JAX would silently turn uint64 into uint32. Fix: call "
            "jax.config.update('jax_enable_x64', True) before creating any array, or set the "
            "environment variable JAX_ENABLE_X64=1."
        )


def random(key: jax.Array, shape: tuple[int, ...], dtype=DTYPE) -> jax.Array:
    """Uniform ring elements: ``dtype[shape]`` (``uint64`` by default) drawn from ``key``.

    Example:
        >>> import jax; jax.config.update("jax_enable_x64", True)
        >>> random(jax.random.key(0), (2, 3)).dtype
        dtype('uint64')
    """
    return jax.random.bits(key, shape, dtype)


def to_signed(v: jax.Array) -> jax.Array:
    """The two's complement view of ring elements: ``uint64 -> int64``, ``uint32 -> int32`` (a
    bitcast, no arithmetic)."""
    return lax.bitcast_convert_type(v, _SIGNED[bits_of(v)])


def from_signed(v: jax.Array, dtype=DTYPE) -> jax.Array:
    r"""Ring elements of ``dtype`` from signed integers (reduced modulo the ring: the integer
    conversion wraps; -1 becomes :math:`2^\ell - 1`)."""
    bits = bits_of(np.zeros((), dtype))
    return lax.bitcast_convert_type(jnp.asarray(v).astype(_SIGNED[bits]), _UNSIGNED[bits])


def const(c, dtype=DTYPE) -> jax.Array:
    r"""A Python or array integer (possibly negative) as a ring element of ``dtype`` (reduced mod
    :math:`2^\ell`)."""
    c = jnp.asarray(c)
    if c.dtype == dtype:
        return c
    return from_signed(c.astype(jnp.int64), dtype)


def party_sum(shares: jax.Array) -> jax.Array:
    """Sum over the party axis (axis 0) modulo the ring (the shares' dtype kept): the opened value.

    Written as n-1 elementwise additions (the party count is small and static), which XLA fuses
    with the surrounding elementwise code; a reduction would be a kernel of its own.
    """
    out = shares[0]
    for i in range(1, shares.shape[0]):
        out = out + shares[i]
    return out


def party_xor(shares: jax.Array) -> jax.Array:
    """XOR over the party axis (axis 0): the opened value of a binary (XOR) sharing."""
    out = shares[0]
    for i in range(1, shares.shape[0]):
        out = out ^ shares[i]
    return out


SMALL_DRAW = 4096  # words: draws up to this size are stored once (see draw)
DEALER = None  # the holder of material that no party draws (see draw)


def draw(key: jax.Array, n_parties: int, *specs, dtype=DTYPE) -> list[jax.Array]:
    r"""Uniform ring elements for several arrays, each party's from its own stream.

    Each spec is ``(holders, shape)``: ``holders = h`` (an int, :math:`1 \le h \le n`) gives
    ``dtype[h, *shape]`` (words of the ring, ``uint64`` by default), row :math:`i` drawn by party
    :math:`i` (``h = n``: a share for every party; ``h = n - 1``: the uniform shares of the first
    n-1 parties, the last party's being the correction); ``holders = DEALER`` gives
    ``dtype[*shape]``, the dealer's own secret (a mask such as truncation's :math:`r`, never any
    party's share).

    The security model (CrypTen's trusted party works the same way): ``key`` is split once into
    :math:`n + 1` keys, party :math:`i`'s and the dealer's, by a one-way derivation
    (:mod:`jaxmpc.core.keys`), and each stream is the words of its own key. Party :math:`i` may learn
    its whole stream from what it holds; that tells it nothing about ``key``, the other parties'
    streams or the dealer's.

    A draw of at most :data:`SMALL_DRAW` words is stored once (:func:`materialize`): one small
    kernel, instead of re-hashing a word at every read of the material that holds it. A larger
    draw is left for XLA to fuse into its consumers, which read it from memory otherwise.

    Example:
        >>> import jax; jax.config.update("jax_enable_x64", True)
        >>> a, r = draw(jax.random.key(0), 3, (3, (2, 4)), (DEALER, (5,)))
        >>> a.shape, r.shape
        ((3, 2, 4), (5,))
    """
    counts = [0] * (n_parties + 1)  # words per stream: the parties', then the dealer's
    starts = []
    for holders, shape in specs:
        rows = [n_parties] if holders is DEALER else range(holders)
        starts.append([(row, counts[row]) for row in rows])
        for row in rows:
            counts[row] += math.prod(shape)
    used = [row for row, count in enumerate(counts) if count]
    streams = {}
    if used:
        keys = jax.random.split(key, n_parties + 1)
        words = [random(keys[row], (counts[row],), dtype) for row in used]
        if sum(counts) <= SMALL_DRAW:  # all streams in one stored kernel
            flat = materialize(jnp.concatenate(words))
            ends = np.cumsum([counts[row] for row in used])
            words = [flat[end - counts[row]:end] for row, end in zip(used, ends)]
        streams = dict(zip(used, words))
    out = []
    for (holders, shape), where in zip(specs, starts):
        size = math.prod(shape)
        rows = [streams[row][start:start + size].reshape(shape) if size else
                jnp.zeros(shape, dtype) for row, start in where]
        out.append(rows[0] if holders is DEALER else jnp.stack(rows))
    return out


def materialize(v: jax.Array) -> jax.Array:
    """``v``, computed once and stored, for producers that are costly to recompute.

    XLA fuses elementwise producers into their consumers and recomputes them for every element the
    consumer reads: a dealer's random draw feeding a digit split that reads each element 5 times is
    generated 5 to 15 times over. XLA never duplicates a reduction into its consumers, so routing
    ``v`` through one (``v + 0`` as a sum over a stacked axis of 2, which XLA does not simplify
    away, unlike ``lax.optimization_barrier``, which the CPU compiler drops) stores it once.
    """
    return jnp.sum(jnp.stack([v, jnp.zeros_like(v)]), axis=0, dtype=v.dtype)


def shares_from_mask(v: jax.Array, mask: jax.Array) -> jax.Array:
    """Additive shares of ``v`` given the first n-1 shares ``mask[n-1, *v.shape]`` (uniform, in
    ``v``'s ring)."""
    return jnp.concatenate([mask, (v - party_sum(mask))[None]], axis=0)


def xor_shares_from_mask(v: jax.Array, mask: jax.Array) -> jax.Array:
    """XOR shares of the word ``v`` given the first n-1 shares ``mask`` (uniform)."""
    return jnp.concatenate([mask, (v ^ party_xor(mask))[None]], axis=0)


def share_value(key: jax.Array, v: jax.Array, n_parties: int) -> jax.Array:
    """Additive shares of the ring value ``v``: ``[n_parties, *v.shape]`` words of ``v``'s ring
    summing to ``v``.

    Parties 0..n-2 get uniform ring elements, each from its own stream (:func:`draw`), and the
    last gets ``v`` minus their sum, so any n-1 shares are uniform and independent of ``v``.
    """
    return shares_from_mask(v, draw(key, n_parties, (n_parties - 1, tuple(v.shape)), dtype=v.dtype)[0])


def xor_share_value(key: jax.Array, v: jax.Array, n_parties: int) -> jax.Array:
    """Binary (XOR) shares of the word ``v``: ``[n_parties, *v.shape]`` words XOR-ing to ``v``."""
    return xor_shares_from_mask(v, draw(key, n_parties, (n_parties - 1, tuple(v.shape)), dtype=v.dtype)[0])


def per_party(v: jax.Array, shares: jax.Array) -> jax.Array:
    """Reshape the public array ``v`` to broadcast against ``shares[n, *shape]`` (same rank)."""
    v = jnp.asarray(v)
    return v.reshape((1,) * (shares.ndim - v.ndim) + v.shape)


def xor_public_bit(c: jax.Array, r: jax.Array) -> jax.Array:
    r"""Additive shares of :math:`c \oplus r` from a public bit ``c`` and shares ``r`` of a bit:
    :math:`c + (1 - 2c)\,r` (local: party 0 adds :math:`c`)."""
    one = word(1, r)
    return add_to_party0(per_party(one - (c << one), r) * r, c)


def add_to_party0(shares: jax.Array, v: jax.Array) -> jax.Array:
    """Add the public ring value ``v`` to party 0's share only (a public constant enters once)."""
    # concatenation rather than ``.at[0].add`` (a scatter): elementwise code that XLA fuses
    v = jnp.broadcast_to(v, shares.shape[1:])
    return jnp.concatenate([(shares[0] + v)[None], shares[1:]], axis=0)
