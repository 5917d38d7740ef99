r"""The additive family: :math:`n`-party additive shares over :math:`\mathbb{Z}_{2^{64}}` or
:math:`\mathbb{Z}_{2^{32}}` with a trusted dealer, registered under the name ``"additive"``.

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
- ``square_sum``: 1 round, :math:`8(n-1)|x|` sent, :math:`8(|x|+1)` dealt; then ``truncate`` of
  one element.
- ``truncate`` / ``truncate_many``: dealer, 1 round, :math:`8(n-1)m` sent, :math:`24m` dealt;
  pair, the same with :math:`16m` dealt; fixed-mask, the same with nothing dealt; exact, the
  dealer's with :math:`32m` dealt, plus one ``msb`` of :math:`m` elements;
  local (SecureML, 2 parties only): free.
- ``xor_share``: as ``share``, with XOR.
- ``and``: 1 round, :math:`16(n-1)` bytes sent per word, 24 dealt.
- ``b2a``: 1 round, :math:`(n-1) \lceil m/8 \rceil` bytes sent, :math:`\lceil 65m/8 \rceil` dealt
  (messages are whole bytes).
- ``msb``: :math:`L(n) + 8` rounds (:func:`jaxmpc.protocols.additive.binary.msb_rounds`); with
  :math:`(O, D)` = :func:`jaxmpc.protocols.additive.binary.msb_words` of :math:`(n, m)`,
  :math:`8(n-1)O + (n-1)\lceil m/8 \rceil` sent, :math:`8D + \lceil 65m/8 \rceil` dealt (the
  AND gates' words, then ``b2a``).

Each formula is also a function (``Kernel.formula``, below), which ``tests/test_complexity_doc.py``
checks against the traced tallies. The formulas above are written for :math:`\mathbb{Z}_{2^{64}}`
(:math:`w = 8` bytes per element); on :math:`\mathbb{Z}_{2^{\ell}}` every 8 is :math:`w = \ell/8`
(4 on :math:`\mathbb{Z}_{2^{32}}`), 65 is :math:`\ell + 1`, and the adder of ``msb`` has
:math:`\log_2 \ell` levels (:math:`L(n) + 7` rounds on :math:`\mathbb{Z}_{2^{32}}`).
"""
from __future__ import annotations

import jax

from ...core import ring
from .. import interface
from . import beaver, binary, truncation


def share(key, values: list, n_parties: int) -> list:
    """Additive shares of each ring array of ``values``, all masks from one draw."""
    words = values[0].dtype if values else ring.DTYPE  # one ring for every value
    masks = ring.draw(key, n_parties, *[(n_parties - 1, tuple(v.shape)) for v in values], dtype=words)
    return [ring.shares_from_mask(v, m) for v, m in zip(values, masks)]


def xor_share(key, words: jax.Array, n_parties: int) -> jax.Array:
    """XOR shares of the words ``words``: parties :math:`0..n-2` get uniform words."""
    return ring.xor_share_value(key, words, n_parties)


def _const(r: int):
    return lambda n_parties, ring_bits=64: r


# ---- the cost formulas as functions (Kernel.formula): (rounds, bytes sent, bytes dealt) per party --
def _w(p) -> int:
    """Bytes of one element of the protocol's ring (8 on Z_2^64, 4 on Z_2^32)."""
    return p.ring_bits // 8


def _bytes(bits: int) -> int:
    """Whole bytes of one message of ``bits`` bits (as :mod:`jaxmpc.trace.accounting` counts)."""
    return -(-int(bits) // 8)


def _free(p, m):
    return 0, 0, 0


def _open(p, m):
    return 1, _w(p) * (p.n_parties - 1) * m, 0


def _product(p, x, y, z):
    return 1, _w(p) * (p.n_parties - 1) * (x + y), _w(p) * (x + y + z)


def _square_sum(p, x):
    return 1, _w(p) * (p.n_parties - 1) * x, _w(p) * (x + 1)


def _truncate(p, m, method):
    truncation.check_method(method, p.n_parties)
    if method == "local":
        return 0, 0, 0
    dealt = {"dealer": 3, "pair": 2, "fixed-mask": 0, "exact": 4}[method]
    out = (1, _w(p) * (p.n_parties - 1) * m, dealt * _w(p) * m)
    if method == "exact":  # and one msb of the m elements
        out = tuple(a + b for a, b in zip(out, _msb(p, m)))
    return out


def _and(p, m):
    return 1, 2 * _w(p) * (p.n_parties - 1) * m, 3 * _w(p) * m


def _b2a(p, m):
    return 1, (p.n_parties - 1) * _bytes(m), _bytes((p.ring_bits + 1) * m)


def _msb(p, m):
    opened, dealt = binary.msb_words(p.n_parties, m, p.ring_bits)
    _, b2a_sent, b2a_dealt = _b2a(p, m)
    return (binary.msb_rounds(p.n_parties, p.ring_bits), _w(p) * (p.n_parties - 1) * opened + b2a_sent,
            _w(p) * dealt + b2a_dealt)


FAMILY = interface.register(interface.Family(
    name="additive",
    rings=(64, 32),
    min_parties=2,
    max_parties=None,
    truncations=truncation.METHODS,
    check_truncation=truncation.check_method,
    doc="semi-honest, any n - 1 of n parties colluding, a trusted dealer",
    kernels={
        "share": interface.Kernel(share, "0 rounds; the dealer's masks", rounds=_const(0),
                                  formula=_free),
        "open": interface.Kernel(ring.party_sum, "1 round; w(n-1) m bytes sent", rounds=_const(1),
                                 formula=_open),
        "product": interface.Kernel(beaver.product, "1 round; w(n-1)(|x|+|y|) sent, "
                                    "w(|x|+|y|+|z|) dealt; + truncate(|z|)",
                                    formula=_product),
        "square_sum": interface.Kernel(beaver.square_sum, "1 round; w(n-1) |x| sent, w(|x|+1) "
                                       "dealt; + truncate(1)", formula=_square_sum),
        "truncate": interface.Kernel(truncation.truncate_shares, "dealer: 1 round, w(n-1) m sent, "
                                     "3w m dealt; pair: the same, 2w m dealt; fixed-mask: the same, "
                                     "nothing dealt; exact: dealer's with 4w m dealt, + msb(m); "
                                     "local: free", formula=_truncate),
        "truncate_many": interface.Kernel(truncation.truncate_many, "as truncate on the total",
                                          formula=_truncate),
        "xor_share": interface.Kernel(xor_share, "0 rounds; the dealer's masks", rounds=_const(0),
                                      formula=_free),
        "and": interface.Kernel(binary.and_shares, "1 round; 2w(n-1) sent, 3w dealt per word",
                                rounds=_const(1), formula=_and),
        "b2a": interface.Kernel(binary.b2a_bit, "1 round; (n-1) ceil(m / 8) sent, "
                                "ceil((l + 1) m / 8) dealt", rounds=_const(1), formula=_b2a),
        "msb": interface.Kernel(binary.msb_in_mode, "L(n) + log2(l) + 2 rounds; (O, D) = "
                                "msb_words(n, m, l): w(n-1) O + (n-1) ceil(m / 8) sent, "
                                "w D + ceil((l + 1) m / 8) dealt",
                                keys=binary.MSB_KEYS, rounds=binary.msb_rounds, formula=_msb),
    },
))
