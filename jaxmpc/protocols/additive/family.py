r"""The additive family: :math:`n`-party additive shares over :math:`\mathbb{Z}_{2^{64}}` with a
trusted dealer, registered under the name ``"additive"``.

Security model: semi-honest parties, any :math:`n - 1` of which may collude; a dealer (crypto
provider) that does not collude with them supplies correlated randomness (Beaver triples,
truncation pairs, binary AND triples, shared random bits) from per-party streams that only it and
that party hold (:func:`jaxmpc.core.ring.draw`). The kernels and their costs (:math:`n` parties,
:math:`m` elements, 8-byte ring elements; "sent" is per party, "dealt" is from the dealer to each
party):

- ``share``: parties :math:`0..n-2` get uniform masks, the last :math:`v - \sum` (0 rounds here:
  the owner's sharing is counted when the value is dealt).
- ``open``: 1 round, :math:`8(n-1)m` bytes sent.
- ``product``: Beaver, 1 round, :math:`8(n-1)(|x|+|y|)` sent, :math:`8(|x|+|y|+|z|)` dealt; then
  ``truncate`` of :math:`z` when both operands are fixed point.
- ``square_sum``: 1 round, :math:`8(n-1)(|x|+1)` sent; then ``truncate`` of one element.
- ``truncate`` / ``truncate_many``: dealer, 1 round, :math:`8(n-1)m` sent, :math:`24m` dealt;
  local (SecureML, 2 parties only): free.
- ``xor_share``: as ``share``, with XOR.
- ``and``: 1 round, :math:`16(n-1)` bytes sent per word, 24 dealt.
- ``b2a``: 1 round, :math:`(n-1) \lceil m/8 \rceil` bytes sent, :math:`\lceil 65m/8 \rceil` dealt
  (messages are whole bytes).
- ``msb``: :math:`L(n) + 8` rounds (:func:`jaxmpc.protocols.additive.binary.msb_rounds`); bytes
  from :func:`jaxmpc.protocols.additive.binary.msb_words`.
"""
from __future__ import annotations

import jax

from ...core import ring
from .. import interface
from . import beaver, binary, truncation


def share(key, values: list, n_parties: int) -> list:
    """Additive shares of each ring array of ``values``, all masks from one draw."""
    masks = ring.draw(key, n_parties, *[(n_parties - 1, tuple(v.shape)) for v in values])
    return [ring.shares_from_mask(v, m) for v, m in zip(values, masks)]


def xor_share(key, words: jax.Array, n_parties: int) -> jax.Array:
    """XOR shares of the words ``words``: parties :math:`0..n-2` get uniform words."""
    return ring.xor_share_value(key, words, n_parties)


def _const(r: int):
    return lambda n_parties: r


FAMILY = interface.register(interface.Family(
    name="additive",
    rings=(ring.RING_BITS,),
    min_parties=2,
    max_parties=None,
    truncations=truncation.METHODS,
    check_truncation=truncation.check_method,
    doc="semi-honest, any n - 1 of n parties colluding, a trusted dealer",
    kernels={
        "share": interface.Kernel(share, "0 rounds; the dealer's masks", rounds=_const(0)),
        "open": interface.Kernel(ring.party_sum, "1 round; 8(n-1) m bytes sent", rounds=_const(1)),
        "product": interface.Kernel(beaver.product, "1 round; 8(n-1)(|x|+|y|) sent, "
                                    "8(|x|+|y|+|z|) dealt; + truncate(|z|)"),
        "square_sum": interface.Kernel(beaver.square_sum, "1 round; 8(n-1)(|x|+1) sent, 8(|x|+1) "
                                       "dealt; + truncate(1)"),
        "truncate": interface.Kernel(truncation.truncate_shares, "dealer: 1 round, 8(n-1) m sent, "
                                     "24 m dealt; local: free"),
        "truncate_many": interface.Kernel(truncation.truncate_many, "as truncate on the total"),
        "xor_share": interface.Kernel(xor_share, "0 rounds; the dealer's masks", rounds=_const(0)),
        "and": interface.Kernel(binary.and_shares, "1 round; 16(n-1) sent, 24 dealt per word",
                                rounds=_const(1)),
        "b2a": interface.Kernel(binary.b2a_bit, "1 round; (n-1) ceil(m / 8) sent, ceil(65 m / 8) dealt",
                                rounds=_const(1)),
        "msb": interface.Kernel(binary.msb_in_mode, "L(n) + 8 rounds; msb_words(n, m)",
                                keys=binary.MSB_KEYS, rounds=binary.msb_rounds),
    },
))
