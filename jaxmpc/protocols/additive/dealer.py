r"""The trusted dealer (crypto provider): correlated randomness as pure functions of a key.

The dealer never sees data. Each function draws its secrets from ``key`` and returns them
additively shared (``[n_parties, ...]`` words of the ring, summing to the secret mod
:math:`2^\ell`) or XOR-shared (binary words, XOR-ing to the secret). Same key, same material; never
reuse a key. Each function takes the ring's word type ``dtype`` (``uint64`` by default, ``uint32``
for :math:`\mathbb{Z}_{2^{32}}`).

Who draws what (:func:`jaxmpc.core.ring.draw`): party :math:`i`'s uniform shares come from party
:math:`i`'s own stream, a seed the dealer shares with that party alone (CrypTen's trusted party
works the same way); the correction share (the secret minus the others) goes to the last party;
values that are the dealer's alone (truncation's :math:`r`, a random bit) come from the dealer's own
stream. No party's material determines another's. Each function draws all its randomness in one
call: one random kernel per piece of material keeps compile times and kernel launches down. A
*spec* ``(holders, shape)`` names one array of a draw (see :func:`jaxmpc.core.ring.draw`).

Cost (per party, counted by the protocols that consume the material): one ring element
(:math:`\ell/8` bytes) per element of each returned sharing.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ...core import ring

MSB_SHIFT = ring.RING_BITS - 1
LOW_MASK = (1 << MSB_SHIFT) - 1  # the 63 low bits


def msb_shift(dtype) -> jax.Array:
    r""":math:`\ell - 1`, the position of the top bit, as a word of the ring ``dtype``."""
    return ring.word(8 * jnp.dtype(dtype).itemsize - 1, dtype)


def low_mask(dtype) -> jax.Array:
    r""":math:`2^{\ell - 1} - 1`, the mask of every bit below the top one, in the ring ``dtype``."""
    return ring.word((1 << (8 * jnp.dtype(dtype).itemsize - 1)) - 1, dtype)


def beaver_specs(op: Callable, a_shape, b_shape, n_parties: int, dtype=ring.DTYPE) -> list[tuple]:
    """Specs of :func:`beaver_masks`' draws: ``a``, ``b`` (a share for each party) and ``c_mask``
    (the first n-1 parties' shares of ``c``)."""
    c_shape = jax.eval_shape(op, jax.ShapeDtypeStruct(tuple(a_shape), dtype),
                             jax.ShapeDtypeStruct(tuple(b_shape), dtype)).shape
    return [(n_parties, tuple(a_shape)), (n_parties, tuple(b_shape)), (n_parties - 1, tuple(c_shape))]


def beaver_masks(key, op: Callable, a_shape, b_shape, n_parties: int, dtype=ring.DTYPE):
    r"""The random part of a Beaver triple: shares of uniform :math:`a, b` and the first n-1 shares
    of :math:`c` (uniform masks). :func:`beaver_triple` completes the last share of :math:`c`.

    Returns:
        ``(a, b, c_mask)``: ``dtype[n, *a_shape]``, ``dtype[n, *b_shape]``, ``dtype[n-1, *c_shape]``.
    """
    return tuple(ring.draw(key, n_parties, *beaver_specs(op, a_shape, b_shape, n_parties, dtype),
                           dtype=dtype))


def beaver_triple(key, op: Callable, a_shape, b_shape, n_parties: int, dtype=ring.DTYPE):
    r"""A Beaver triple for the bilinear map ``op``: shares of :math:`a, b, c = \mathrm{op}(a, b)`.

    Args:
        key: PRNG key.
        op: a bilinear map on ring arrays (``jnp.multiply``, ``gemm.matmul``, a convolution).
        a_shape, b_shape: shapes of the two operands (without the party axis).
        n_parties: number of parties.
        dtype: the ring's word type.
    Returns:
        ``(a, b, c)``, each ``dtype[n_parties, *shape]``; ``c`` has the shape of ``op(a, b)``.
    """
    return complete_triple(op, beaver_masks(key, op, a_shape, b_shape, n_parties, dtype))


def complete_triple(op: Callable, masks):
    r""":func:`beaver_triple` from its draws ``(a, b, c_mask)``: the last share of :math:`c`."""
    a, b, c_mask = masks
    return a, b, ring.shares_from_mask(op(ring.party_sum(a), ring.party_sum(b)), c_mask)


def truncation_specs(shape, n_parties: int) -> list[tuple]:
    """Specs of :func:`truncation_masks`' draws: the dealer's ``r`` and two sets of n-1 masks."""
    shape = tuple(shape)
    return [(ring.DEALER, shape), (n_parties - 1, shape), (n_parties - 1, shape)]


def truncation_masks(key, shape, n_parties: int, dtype=ring.DTYPE):
    r"""The dealer's random draws for truncation: a uniform :math:`r` (the dealer's own) and the
    first n-1 shares (the parties' uniform masks) of :math:`r_{\ell-1}` and of
    :math:`\lfloor r_{<\ell-1}/d \rfloor`.

    Returns:
        ``(r, m_msb, m_q)``: ``dtype[*shape]`` and two ``dtype[n_parties - 1, *shape]``.
    """
    return tuple(ring.draw(key, n_parties, *truncation_specs(shape, n_parties), dtype=dtype))


def pair_specs(shape, n_parties: int) -> list[tuple]:
    r"""Specs of a probabilistic truncation pair's draws: the dealer's ``r`` and the n-1 masks of
    :math:`\lfloor r/d \rfloor`."""
    shape = tuple(shape)
    return [(ring.DEALER, shape), (n_parties - 1, shape)]


def exact_specs(shape, n_parties: int) -> list[tuple]:
    r"""Specs of exact truncation's draws: :func:`truncation_specs` and the n-1 masks of
    :math:`r_{<63} \bmod d`."""
    return truncation_specs(shape, n_parties) + [(n_parties - 1, tuple(shape))]


def with_truncation(key, specs, trunc_shape, n_parties: int, dtype=ring.DTYPE):
    r"""Material of several ``specs`` and the truncation masks of ``trunc_shape``, in ONE draw.

    For a product followed by a truncation (Beaver, then dealer truncation of the result): one
    key and one random kernel instead of a key split and two draws.

    Returns:
        ``(material, masks)``: the arrays of ``specs`` and :func:`truncation_masks`' three arrays.
    """
    drawn = ring.draw(key, n_parties, *specs, *truncation_specs(trunc_shape, n_parties), dtype=dtype)
    return tuple(drawn[:len(specs)]), tuple(drawn[len(specs):])


def truncation_material(key, shape, n_parties: int, divisor, dtype=ring.DTYPE):
    r"""Material for dealer-assisted truncation by a public ``divisor`` :math:`d`.

    The dealer draws a uniform :math:`r \in \mathbb{Z}_{2^{\ell}}` and shares
    :math:`r`, its most significant bit :math:`r_{\ell-1}` and
    :math:`\lfloor r_{<\ell-1} / d \rfloor`, where :math:`r_{<\ell-1} = r \bmod 2^{\ell-1}`. The shares of :math:`r_{63}` and of the quotient are
    those that :func:`jaxmpc.protocols.additive.truncation.truncate_shares` uses with the same key; the protocol
    never forms the shares of :math:`r` itself (their masks are drawn after the rest).

    Returns:
        ``(r, r_msb, r_low_div)``, each ``dtype[n_parties, *shape]``.
    """
    shape = tuple(shape)
    *masks, m_r = ring.draw(key, n_parties, *truncation_specs(shape, n_parties), (n_parties - 1, shape),
                            dtype=dtype)
    return (ring.shares_from_mask(masks[0], m_r),) + complete_truncation(masks, divisor)


def complete_truncation(masks, divisor):
    r"""Shares of :math:`r_{\ell-1}` and :math:`\lfloor r_{<\ell-1}/d \rfloor` from the draws
    ``(r, m_msb, m_q)``."""
    r, m_msb, m_q = masks
    d = jnp.asarray(divisor, r.dtype)
    return (ring.shares_from_mask(r >> msb_shift(r.dtype), m_msb),
            ring.shares_from_mask((r & low_mask(r.dtype)) // d, m_q))


def and_triple(key, shape, n_parties: int, fanout: int | None = None, dtype=ring.DTYPE):
    r"""A binary AND triple on words of ``dtype``: XOR shares of :math:`a, b, c = a \wedge b`.

    With ``fanout=f``: :math:`f` triples that share their :math:`a`, for :math:`f` ANDs with the
    same left operand (its masked value is opened once): ``a: dtype[n, *shape]``,
    ``b, c: dtype[n, f, *shape]`` with :math:`c_j = a \wedge b_j`; :math:`1 + 2f` words per
    element instead of :math:`3f`.
    """
    shape = tuple(shape)
    fan = () if fanout is None else (int(fanout),)
    a, b, c_mask = ring.draw(key, n_parties, (n_parties, shape), (n_parties, fan + shape),
                             (n_parties - 1, fan + shape), dtype=dtype)
    c = (ring.party_xor(a) if fanout is None else ring.party_xor(a)[None]) & ring.party_xor(b)
    return a, b, ring.xor_shares_from_mask(c, c_mask)


def random_bits(key, shape, n_parties: int, dtype=ring.DTYPE):
    r"""Random bits shared in both forms: XOR shares of :math:`r \in \{0,1\}` (in bit 0 of a word)
    and additive shares of the same :math:`r`."""
    mask = (n_parties - 1, tuple(shape))
    r, m_bin, m_arith = ring.draw(key, n_parties, (ring.DEALER, tuple(shape)), mask, mask, dtype=dtype)
    r = r & ring.word(1, dtype)
    return ring.xor_shares_from_mask(r, m_bin), ring.shares_from_mask(r, m_arith)


def square_sum_specs(shape, n_parties: int) -> list[tuple]:
    """Specs of :func:`square_sum_pair`'s draws: ``a`` (a share for each party) and the n-1 masks
    of the sum."""
    return [(n_parties, tuple(shape)), (n_parties - 1, ())]


def square_sum_pair(key, shape, n_parties: int, dtype=ring.DTYPE):
    r"""Material for a Beaver sum of squares: shares of a uniform :math:`a` and of :math:`\sum a^2`.

    Returns:
        ``(a, a2)``: ``dtype[n_parties, *shape]`` and ``dtype[n_parties]``.
    """
    return complete_square_sum(*ring.draw(key, n_parties, *square_sum_specs(shape, n_parties),
                                          dtype=dtype))


def complete_square_sum(a, c_mask):
    r""":func:`square_sum_pair` from its draws (``a``, and the n-1 masks of :math:`\sum a^2`)."""
    a_open = ring.party_sum(a)
    return a, ring.shares_from_mask(jnp.sum(a_open * a_open, dtype=a.dtype), c_mask)
