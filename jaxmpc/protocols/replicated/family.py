r"""The replicated family: 2-out-of-3 replicated secret sharing over :math:`\mathbb{Z}_{2^{64}}` or
:math:`\mathbb{Z}_{2^{32}}` among exactly 3 parties, honest majority, no dealer; registered under the name ``"replicated"``.

Security model (ABY3, Mohassel & Rindal, CCS 2018; Araki, Furukawa, Lindell, Nof & Ohara, CCS
2016; Falcon, Wagh et al., PETS 2021): semi-honest parties, at most one of them corrupt (a single
party's view is independent of the secret; two colluding parties hold every component). No
dealer: correlated randomness comes from three pairwise PRF keys
(:mod:`jaxmpc.protocols.replicated.prf`). The representation is the additive family's
``uint64[3, *shape]`` component array (``uint32`` on :math:`\mathbb{Z}_{2^{32}}`;
:math:`x = x_0 + x_1 + x_2`), in which party :math:`i` holds
components :math:`i` and :math:`i + 1`, so every local operation above the kernels (addition,
public integer products, a public constant added to component 0) is unchanged.

The kernels and their costs (:math:`m` elements, 8-byte ring elements; "sent" is per party, the
largest any party sends; nothing is dealt):

- ``share``: components 0 and 1 uniform, component 2 the correction (0 rounds here, as in the
  additive family: the input owner's messages are not counted).
- ``open``: 1 round, :math:`8m` sent (each party lacks one component; its neighbour sends it).
- ``product``: local cross terms and a zero-sharing, then one resharing (ABY3 Sec. 2.2; Falcon
  Sec. 3.1, "each party sends one ring element"): 1 round, :math:`8|z|` sent; then ``truncate`` of
  :math:`z` when both operands are fixed point.
- ``square_sum``: 1 round, 8 bytes sent (the sum is reshared as one element); then ``truncate`` of
  one element.
- ``truncate`` / ``truncate_many``: ``share``, ABY3's share truncation (Sec. 5.1.1; SPU ``aby3``
  ``TruncA``: 1 round, :math:`k` bits): 1 round, :math:`8m` sent by party 1 alone.
- ``xor_share``: as ``share``, with XOR.
- ``and``: 1 round, :math:`8m` sent (ABY3 Sec. 2.2 over bits).
- ``b2a``: bit injection (ABY3 Sec. 5.3): 2 rounds, :math:`16m` sent by party 0 (:math:`8m` by the
  others).
- ``msb``: bit decomposition (ABY3 Sec. 5.3) with the packed carry-lookahead adder: 10 rounds
  (input 1, adder 7, B2A 2); with :math:`A` = :func:`jaxmpc.protocols.replicated.binary.msb_and_words`
  of :math:`m`, :math:`8(A + 3m)` bytes sent by party 0.

Each formula is also a function (``Kernel.formula``, below), which ``tests/test_complexity_doc.py``
checks against the traced tallies. The formulas above are written for :math:`\mathbb{Z}_{2^{64}}`
(:math:`w = 8` bytes per element); on :math:`\mathbb{Z}_{2^{\ell}}` every 8 is :math:`w = \ell/8`
(4 on :math:`\mathbb{Z}_{2^{32}}`, 16 is :math:`2w`), and the adder of ``msb`` has
:math:`\log_2 \ell` levels (9 rounds on :math:`\mathbb{Z}_{2^{32}}`; :math:`A` =
``msb_and_words(m, l)``).
"""
from __future__ import annotations

import jax

from ...core import ring
from ...errors import ProtocolError
from .. import interface
from . import binary, mult, prf, truncation


def share(key, values: list, n_parties: int) -> list:
    """Replicated components of each ring array of ``values``: components 0 and 1 uniform, all
    from one draw, component 2 the correction."""
    words = values[0].dtype if values else ring.DTYPE  # one ring for every value
    masks = ring.draw(key, n_parties, *[(2, tuple(v.shape)) for v in values], dtype=words)
    return [ring.shares_from_mask(v, m) for v, m in zip(values, masks)]


def _const(r: int):
    return lambda n_parties, ring_bits=64: r


# ---- the cost formulas as functions (Kernel.formula): (rounds, bytes sent, bytes dealt) per party --
def _w(p) -> int:
    """Bytes of one element of the protocol's ring (8 on Z_2^64, 4 on Z_2^32)."""
    return p.ring_bits // 8


def _free(p, m):
    return 0, 0, 0


def _one_element_each(p, m):  # open, and: one element per element to one neighbour
    return 1, _w(p) * m, 0


def _product(p, x, y, z):
    return 1, _w(p) * z, 0


def _square_sum(p, x):
    return 1, _w(p), 0


def _truncate(p, m, method):
    truncation.check_method(method, p.n_parties)
    return 1, _w(p) * m, 0


def _b2a(p, m):
    return binary.B2A_ROUNDS, 2 * _w(p) * m, 0


def _msb(p, m):
    return (binary.msb_rounds(p.n_parties, p.ring_bits),
            _w(p) * (binary.msb_and_words(m, p.ring_bits) + 3 * m), 0)


def _check_parties(n_parties: int) -> None:
    if n_parties != prf.N_PARTIES:
        raise ProtocolError(f"protocol 'replicated' runs among exactly 3 parties, got {n_parties}.")


def _xor_share(key, words: jax.Array, n_parties: int) -> jax.Array:
    _check_parties(n_parties)
    return binary.xor_share(key, words, n_parties)


def _and(key, x, y, name: str = "and"):
    return binary.and_shares(key, x, y, name)


FAMILY = interface.register(interface.Family(
    name="replicated",
    rings=(64, 32),
    min_parties=3,
    max_parties=3,
    truncations=truncation.METHODS,
    check_truncation=truncation.check_method,
    doc="semi-honest, honest majority (at most 1 of 3 parties corrupt), no dealer: pairwise PRF keys",
    default_truncation="share",
    open_recipients=1,
    kernels={
        "share": interface.Kernel(share, "0 rounds; masks from the pairwise keys", rounds=_const(0),
                                  formula=_free),
        "open": interface.Kernel(ring.party_sum, "1 round; w m bytes sent (the missing component)",
                                 rounds=_const(1), formula=_one_element_each),
        "product": interface.Kernel(mult.product, "1 round; w |z| sent (ABY3 2.2: reshare z_i to "
                                    "party i-1); + truncate(|z|)", formula=_product),
        "square_sum": interface.Kernel(mult.square_sum, "1 round; w bytes sent; + truncate(1)",
                                       formula=_square_sum),
        "truncate": interface.Kernel(truncation.truncate_shares, "share (ABY3 5.1.1): 1 round, w m "
                                     "sent by party 1 alone", formula=_truncate),
        "truncate_many": interface.Kernel(truncation.truncate_many, "as truncate on the total",
                                          formula=_truncate),
        "xor_share": interface.Kernel(_xor_share, "0 rounds; masks from the pairwise keys",
                                      rounds=_const(0), formula=_free),
        "and": interface.Kernel(_and, "1 round; w m sent (ABY3 2.2 over bits)", rounds=_const(1),
                                formula=_one_element_each),
        "b2a": interface.Kernel(binary.b2a_bit, "2 rounds (ABY3 5.3 bit injection); 2w m sent by "
                                "party 0", rounds=_const(binary.B2A_ROUNDS), formula=_b2a),
        "msb": interface.Kernel(binary.msb_in_mode, "log2(l) + 4 rounds (ABY3 5.3 bit decomposition, "
                                "packed carry tree); A = msb_and_words(m, l): w (A + 3 m) sent by party 0",
                                keys=binary.MSB_KEYS, rounds=binary.msb_rounds, formula=_msb),
    },
))
