r"""The trusted dealer (crypto provider): correlated randomness as pure functions of a key.

The dealer never sees data. Each function draws its secrets from ``key`` and returns them
additively shared (``uint64[n_parties, ...]``, summing to the secret mod 2^64) or XOR-shared
(binary words, XOR-ing to the secret). Same key, same material; never reuse a key.

Cost (per party, counted by the protocols that consume the material): one ring element (8 bytes)
per element of each returned sharing.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from . import ring

MSB_SHIFT = ring.RING_BITS - 1
LOW_MASK = (1 << MSB_SHIFT) - 1  # the 63 low bits


def beaver_triple(key, op: Callable, a_shape, b_shape, n_parties: int):
    r"""A Beaver triple for the bilinear map ``op``: shares of :math:`a, b, c = \mathrm{op}(a, b)`.

    Args:
        key: PRNG key.
        op: a bilinear map on ring arrays (``jnp.multiply``, ``ring.matmul``, a convolution).
        a_shape, b_shape: shapes of the two operands (without the party axis).
        n_parties: number of parties.
    Returns:
        ``(a, b, c)``, each ``uint64[n_parties, *shape]``; ``c`` has the shape of ``op(a, b)``.
    """
    k_a, k_b, k_c = jax.random.split(key, 3)
    a = ring.random(k_a, (n_parties,) + tuple(a_shape))  # shares of a uniform a
    b = ring.random(k_b, (n_parties,) + tuple(b_shape))
    c = op(ring.party_sum(a), ring.party_sum(b))
    return a, b, ring.share_value(k_c, c, n_parties)


def truncation_material(key, shape, n_parties: int, divisor):
    r"""Material for dealer-assisted truncation by a public ``divisor`` :math:`d`.

    The dealer draws a uniform :math:`r \in \mathbb{Z}_{2^{64}}` and shares
    :math:`r`, its most significant bit :math:`r_{63}` and :math:`\lfloor r_{<63} / d \rfloor`,
    where :math:`r_{<63} = r \bmod 2^{63}`.

    Returns:
        ``(r, r_msb, r_low_div)``, each ``uint64[n_parties, *shape]``.
    """
    k_r, k_m, k_l, k_q = jax.random.split(key, 4)
    r = ring.random(k_r, tuple(shape))
    msb = r >> MSB_SHIFT
    low_div = (r & jnp.uint64(LOW_MASK)) // divisor
    return (ring.share_value(k_m, r, n_parties), ring.share_value(k_l, msb, n_parties),
            ring.share_value(k_q, low_div, n_parties))


def and_triple(key, shape, n_parties: int):
    r"""A binary AND triple on 64-bit words: XOR shares of :math:`a, b, c = a \wedge b`."""
    k_a, k_b, k_c = jax.random.split(key, 3)
    a = ring.random(k_a, (n_parties,) + tuple(shape))
    b = ring.random(k_b, (n_parties,) + tuple(shape))
    c = ring.party_xor(a) & ring.party_xor(b)
    return a, b, ring.xor_share_value(k_c, c, n_parties)


def random_bits(key, shape, n_parties: int):
    r"""Random bits shared in both forms: XOR shares of :math:`r \in \{0,1\}` (in bit 0 of a word)
    and additive shares of the same :math:`r`."""
    k_r, k_b, k_a = jax.random.split(key, 3)
    r = ring.random(k_r, tuple(shape)) & jnp.uint64(1)
    return ring.xor_share_value(k_b, r, n_parties), ring.share_value(k_a, r, n_parties)


def square_sum_pair(key, shape, n_parties: int):
    r"""Material for a Beaver sum of squares: shares of a uniform :math:`a` and of :math:`\sum a^2`.

    Returns:
        ``(a, a2)``: ``uint64[n_parties, *shape]`` and ``uint64[n_parties]``.
    """
    k_a, k_c = jax.random.split(key)
    a = ring.random(k_a, (n_parties,) + tuple(shape))
    a_open = ring.party_sum(a)
    return a, ring.share_value(k_c, jnp.sum(a_open * a_open, dtype=ring.DTYPE), n_parties)
