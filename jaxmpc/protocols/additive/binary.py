r"""The additive family's binary kernels: AND of XOR-shared words, B2A of a bit, and the MSB of an
additively shared ring value by A2B with a carry-lookahead adder on bit-packed words.

The construction (ABY, Demmler, Schneider & Zohner, NDSS 2015; ABY3, Mohassel & Rindal, CCS 2018;
the carry-lookahead operator is Kogge & Stone's, IEEE Trans. Computers 1973, applied as a
reduction tree like SPU's ``carry_out``, which halves its shares' bit width at every level; here two
half-used 64-bit words are packed into one instead):

1. Party :math:`i`'s additive share :math:`x_i` is a word that party :math:`i` holds alone, i.e.
   an XOR-sharing of :math:`x_i` in which every other party holds 0. No communication.
2. The :math:`n` words are reduced to 2 with carry-save 3:2 compressors (Wallace tree; one round
   per tree layer): :math:`s = a \oplus b \oplus c`, :math:`t = \mathrm{maj}(a, b, c) \ll 1`.
3. A carry-lookahead tree on the 2 words gives the carry into bit 63 in :math:`1 + \log_2 64 = 7`
   rounds; :math:`x_{63} = p_{63} \oplus c_{63}`. Each level halves the bits still needed, and
   two half-used words are packed into one before every level, so the tree ANDs about 2 words
   per element in all (a full Kogge-Stone prefix: 11).
4. The bit is converted to an additive sharing with a dealer random bit shared in both forms.

Every opening is a value masked by fresh dealer randomness (the :math:`e, f` of binary AND triples
and the 1-bit :math:`c = x_{63} \oplus r`), so it is uniform and reveals nothing. The comparison
API (:mod:`jaxmpc.ops.compare`) is written against these kernels through the family's ``msb``.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ...core import ring
from ...trace import accounting
from . import dealer



def tree_levels(bits: int = 64) -> tuple:
    """Levels :math:`j = 0..\\log_2 \\ell - 1` of the adder's carry tree on :math:`\\ell`-bit words:
    the shift :math:`2^j` and the mask of the bit positions whose bit :math:`j` is 0
    (0x5555..., 0x3333..., 0x0f0f..., ...)."""
    return tuple((1 << j, sum(1 << i for i in range(bits) if not (i >> j) & 1))
                 for j in range(int(bits).bit_length() - 1))


_TREE_LEVELS = tree_levels(64)
ADDER_ROUNDS = 1 + len(_TREE_LEVELS)  # 7 on Z_2^64: the generate word, then the six tree levels
MSB_KEYS = 3  # keys one MSB consumes: compressor and generate triples, B2A bit, carry-tree triples


def adder_rounds(bits: int = 64) -> int:
    """Rounds of the adder on :math:`\\ell`-bit words: :math:`1 + \\log_2 \\ell` (7 for 64, 6 for 32)."""
    return 1 + len(tree_levels(bits))


# ---- cost formulas (static; the docstrings and the tests use them) ---------------------------------
def csa_layers(n_parties: int) -> int:
    """Layers of 3:2 compressors that reduce ``n_parties`` words to 2 (0 for 2 parties)."""
    k, layers = int(n_parties), 0
    while k > 2:
        k -= k // 3
        layers += 1
    return layers


def msb_rounds(n_parties: int, bits: int = 64) -> int:
    """Rounds of :func:`msb` on :math:`\\mathbb{Z}_{2^\\ell}`: ``csa_layers(n)`` ``+ 1 + log2(l)``
    (adder: 7 for 64, 6 for 32) ``+ 1`` (conversion)."""
    return csa_layers(n_parties) + adder_rounds(bits) + 1


def tree_words(size: int, bits: int = 64) -> tuple:
    """Packed words AND-ed at each level of :func:`_carry_tree` for ``size`` elements of
    :math:`\\ell` bits: ``ceil(size / 2), ceil(size / 4), ..., ceil(size / l)`` (each level pairs
    the previous words)."""
    out, n = [], int(size)
    for _ in tree_levels(bits):
        n = -(-n // 2)
        out.append(n)
    return tuple(out)


def adder_words(size: int, bits: int = 64) -> tuple:
    """``(opened, dealer)``: :math:`\\ell`-bit words the adder of :func:`msb` opens, and takes from
    the dealer, for ``size`` elements: the generate word (2 opened, 3 dealt per element), then per
    packed word of :func:`tree_words` 3 and 5 (every level but the last: two ANDs sharing an
    operand), 2 and 3 (the last)."""
    w = tree_words(size, bits)
    return 2 * int(size) + 3 * sum(w[:-1]) + 2 * w[-1], 3 * int(size) + 5 * sum(w[:-1]) + 3 * w[-1]


def msb_words(n_parties: int, size: int, bits: int = 64) -> tuple:
    """``(opened, dealer)``: :math:`\\ell`-bit words that :func:`msb` of ``size`` elements opens
    (each party sends its share of each to the :math:`n - 1` others) and takes from the dealer (per
    party), in its AND gates: ``2 (n - 2)`` AND-ed words per element in the compressors (2 opened
    and 3 dealt each), then :func:`adder_words`. The B2A bit is extra (1 bit opened,
    :math:`1 + \\ell` bits dealt)."""
    csa = 2 * (int(n_parties) - 2) * int(size)
    opened, dealt = adder_words(size, bits)
    return 2 * csa + opened, 3 * csa + dealt


# ---- binary (XOR-shared) building blocks --------------------------------------------------------
def and_shares(key, x: jax.Array, y: jax.Array, name: str = "and",
               transcript: list | None = None) -> jax.Array:
    r"""XOR shares of :math:`x \wedge y` (bitwise, on 64-bit words) from XOR shares of ``x`` and ``y``.

    Args:
        key: PRNG key for the dealer's binary AND triple.
        x, y: ``uint64[n_parties, *shape]`` XOR shares (same shape).
        name: label for cost accounting.
        transcript: if a list, the opened words ``(e, f)`` are appended to it (tests of privacy).
    Returns:
        ``uint64[n_parties, *shape]`` XOR shares of :math:`x \wedge y`.

    Protocol (Beaver's protocol over GF(2), bitwise):
        1. Get an AND triple :math:`(a, b, c = a \wedge b)` from :func:`jaxmpc.protocols.additive.dealer.and_triple`.
        2. Mask: each party computes its shares of :math:`e = x \oplus a`, :math:`f = y \oplus b`.
        3. Open :math:`e` and :math:`f` together (one round; uniform, since :math:`a, b` are).
        4. Combine locally: :math:`z_i = c_i \oplus (e \wedge y_i) \oplus (a_i \wedge f)`, since
           :math:`x \wedge y = (e \oplus a) \wedge y = (e \wedge y) \oplus (a \wedge f) \oplus
           (a \wedge b)`: linear in the shares, with no public term.

    Cost: 1 round; each party sends :math:`8 (n-1) \cdot 2m` bytes for :math:`m` words; the dealer
    sends :math:`3 \cdot 8 m` bytes to each party.

    Example:
        >>> import jax, jax.numpy as jnp; jax.config.update("jax_enable_x64", True)
        >>> from jaxmpc.core import ring
        >>> kx, ky, kz = jax.random.split(jax.random.key(0), 3)
        >>> x = ring.xor_share_value(kx, jnp.uint64(0b1100), 3)
        >>> y = ring.xor_share_value(ky, jnp.uint64(0b1010), 3)
        >>> int(ring.party_xor(and_shares(kz, x, y)))
        8
    """
    triple = dealer.and_triple(key, tuple(x.shape[1:]), x.shape[0], dtype=x.dtype)
    return _and_with_triple(triple, x, y, name, transcript)


def _and_with_triple(triple, x: jax.Array, y: jax.Array, name: str, transcript) -> jax.Array:
    """The protocol of :func:`and_shares` with a given triple (steps 2-4)."""
    a, b, c = triple
    return _and_fanout((a, b[:, None], c[:, None]), x, y[:, None], name, transcript)[:, 0]


def _and_fanout(triple, x: jax.Array, ys: jax.Array, name: str, transcript) -> jax.Array:
    r"""XOR shares of :math:`x \wedge y_j` for the :math:`f` words ``ys[:, j]`` (``ys``:
    ``uint64[n, f, *shape]``), in one round, with a triple whose :math:`a` is shared by the
    :math:`f` ANDs (:func:`jaxmpc.protocols.additive.dealer.and_triple` with ``fanout``): :math:`e = x \oplus a` is
    opened once, :math:`f_j = y_j \oplus b_j` each (all uniform: :math:`a, b_j` are independent
    and uniform), and :math:`z_j = c_j \oplus (e \wedge y_j) \oplus (a \wedge f_j)` (step 4 of
    :func:`and_shares`). Opens :math:`1 + f` words per element and uses :math:`1 + 2f` dealer
    words, where :math:`f` separate ANDs open :math:`2f` and use :math:`3f`. Returns
    ``uint64[n, f, *shape]``."""
    a, b, c = triple
    n, fan = ys.shape[0], ys.shape[1]
    size = int(np.prod(x.shape[1:], dtype=np.int64))
    bits = ring.bits_of(x)
    accounting.record(name, n_parties=n, rounds=1, elements_opened=(1 + fan) * size,
                      bits_per_element=bits, dealer_elements=(1 + 2 * fan) * size, dealer_bits=bits)
    e = ring.party_xor(x ^ a)[None]  # the only openings
    f = ring.party_xor(ys ^ b)
    if transcript is not None:
        transcript.extend([e[0], *(f[j] for j in range(fan))])
    # no public term for party 0 to add: XLA fuses this into one expression (a concatenation did not)
    return c ^ (ring.per_party(e, ys) & ys) ^ (a[:, None] & ring.per_party(f, b))


def _slice_triple(triple, start: int, stop: int):
    """Words ``start:stop`` (axis 1) of a stacked triple: slices of a triple are triples."""
    return tuple(t[:, start:stop] for t in triple)


def _words_of_shares(shares: jax.Array) -> jax.Array:
    """``uint64[n, n, *shape]``: word ``i`` (axis 1) is party i's share, XOR-shared as [0..x_i..0]."""
    n = shares.shape[0]
    eye = np.eye(n, dtype=bool).reshape((n, n) + (1,) * (shares.ndim - 1))
    return jnp.where(eye, shares[None], ring.word(0, shares))


def _carry_save(triple, words: jax.Array, transcript) -> jax.Array:
    """Reduce ``uint64[n, k, *shape]`` XOR-shared words (axis 1) to 2 with the same sum mod 2^64.

    Each layer groups the words in threes; every group becomes (sum, carry) and the ANDs of all
    groups of a layer are batched into one AND (one round), consuming the next words of the
    stacked ``triple`` (``2 (k - 2)`` words in all). The number of parties is static, so the (few)
    layers are a Python loop.
    """
    used = 0
    while words.shape[1] > 2:
        t = words.shape[1] // 3
        # groups by a reshape, not strided slices: XLA's SPMD partitioner (jax 0.10) miscompiles
        # strided slices of a party-derived axis when the parties are placed on devices (jaxmpc.run.mesh)
        groups = words[:, :3 * t].reshape(words.shape[:1] + (t, 3) + words.shape[2:])
        a, b, c = groups[:, :, 0], groups[:, :, 1], groups[:, :, 2]
        axb = a ^ b
        z = _and_with_triple(_slice_triple(triple, used, used + 2 * t),
                             jnp.concatenate([a, c], axis=1), jnp.concatenate([b, axb], axis=1),
                             "msb/carry_save", transcript)
        used += 2 * t
        carry = (z[:, :t] ^ z[:, t:]) << ring.word(1, z)  # maj(a,b,c) = (a&b) ^ (c&(a^b)), disjoint
        words = jnp.concatenate([axb ^ c, carry, words[:, 3 * t:]], axis=1)
    return words


def _carry_tree(triple, g: jax.Array, p: jax.Array, transcript) -> jax.Array:
    r"""XOR shares of the group generate of all 64 bits of each element, packed 64 per word.

    ``g, p``: ``uint64[n, m]`` XOR shares of per-bit generate and propagate words of ``m``
    elements; ``triple``: a fan-out-2 AND triple (:func:`jaxmpc.protocols.additive.dealer.and_triple`) of
    ``sum(tree_words(m))`` words. Returns ``uint64[n, ceil(m / 64)]`` whose bit ``t`` of word
    ``i`` is the generate :math:`G` of element ``64 i + t``, i.e. the carry out of its bit 63.

    A carry-lookahead *reduction* (only the carry out is needed, not every prefix): level
    :math:`j` (shift :math:`s = 2^j`) combines each block with the block :math:`s` bits above it,
    :math:`(G, P) \leftarrow (G_{hi} \oplus (P_{hi} \wedge G_{lo}),\; P_{hi} \wedge P_{lo})`
    (disjoint terms, so OR is XOR); the two ANDs share :math:`P_{hi}` (:func:`_and_fanout`).
    Only the bits at block starts matter, half of them per level, so two words are packed into
    one before each level: word B's useful bits go into word A's unused positions (mask
    :math:`M_j` of the bits whose bit :math:`j` is 0, B shifted up by :math:`s`). Packing is
    linear, hence local on XOR shares. Level :math:`j` works on :math:`\lceil m/2^{j+1} \rceil`
    packed words (a lone word is not paired: its offsets stay below :math:`2^j`); after level 5
    each word holds 64 elements, element ``64 i + t`` at bit ``t``. Six rounds; about :math:`3m`
    words opened and :math:`5m` dealt in all (:func:`adder_words`), where the Kogge-Stone prefix
    levels that it replaced opened :math:`22m` and dealt :math:`33m`. The levels are unrolled
    (their shapes shrink), each level's output is stored once (:func:`jaxmpc.core.ring.materialize`:
    when XLA fused every level into the next, it recomputed each level inside the next one's
    kernels and a large ReLU ran much slower), and the triple is drawn once and sliced per
    level. Level 5 uses only the first of its two triples: the second is drawn
    (:math:`2 \lceil m/64 \rceil` words) but not dealt.
    """
    n, used = g.shape[0], 0
    gp = jnp.stack([g, p], axis=1)  # [n, 2, words]: generate and propagate travel together
    levels = tree_levels(ring.bits_of(g))
    keep_g = np.array([~0, 0], np.int64).astype(g.dtype).reshape(1, 2, 1)
    for j, (s, mask) in enumerate(levels):
        sh = ring.word(s, g)
        if gp.shape[2] > 1:  # pair the words; a zero word (shared as zeros) fills an odd count
            if gp.shape[2] % 2:
                gp = jnp.pad(gp, ((0, 0), (0, 0), (0, 1)))
            pairs = gp.reshape(n, 2, -1, 2)
            m = ring.word(mask, g)

            def pack(v):  # word A's bits under the mask, word B's shifted into the gaps
                return (v[..., 0] & m) ^ ((v[..., 1] & m) << sh)

            hi, lo = pack(pairs >> sh), pack(pairs)
        else:
            hi, lo = gp >> sh, gp
        k = hi.shape[2]
        a, b, c = (v[..., used:used + k] for v in triple)
        used += k
        fan = 2 if j < len(levels) - 1 else 1  # the last level needs only G
        z = _and_fanout((a, b[:, :fan], c[:, :fan]), hi[:, 1], lo[:, :fan], "msb/adder", transcript)
        # (G_hi ^ P_hi G_lo, P_hi P_lo), stored: the next level reads each word through two packings,
        # and XLA would otherwise recompute this level (and every one before it) inside each
        gp = ring.materialize((hi[:, :fan] & jnp.asarray(keep_g[:, :fan])) ^ z)
    return gp[:, 0]


def b2a_bit(key, bit: jax.Array, transcript: list | None = None) -> jax.Array:
    r"""Additive shares of a bit from XOR shares of it (in bit 0 of each word).

    Args:
        key: PRNG key for the dealer's random bit.
        bit: ``uint64[n_parties, *shape]`` XOR shares whose bit 0 is the secret bit (other bits 0).
        transcript: if a list, the opened bits ``c`` are appended to it.
    Returns:
        ``uint64[n_parties, *shape]`` additive shares of the bit (0 or 1 in the ring).

    Protocol:
        1. Get a random bit :math:`r` from the dealer, XOR-shared and additively shared
           (:func:`jaxmpc.protocols.additive.dealer.random_bits`).
        2. Mask and open :math:`c = b \oplus r` (1 bit per element; uniform, since :math:`r` is).
        3. Combine locally: :math:`[b]_A = c + (1 - 2c) [r]_A` (party 0 adds :math:`c`).

    Cost: 1 round; each party sends :math:`(n-1) \lceil m / 8 \rceil` bytes for :math:`m` elements
    (one message of :math:`m` bits to each other party, in whole bytes); the dealer sends each party
    1 bit and 1 ring element (65 bits) per element, :math:`\lceil 65 m / 8 \rceil` bytes.
    """
    n = bit.shape[0]
    shape = tuple(bit.shape[1:])
    size = int(np.prod(shape, dtype=np.int64))
    r_bin, r_arith = dealer.random_bits(key, shape, n, bit.dtype)
    accounting.record("msb/b2a", n_parties=n, rounds=1, elements_opened=size, bits_per_element=1,
                      dealer_elements=size, dealer_bits=1 + ring.bits_of(bit))
    c = ring.party_xor(bit ^ r_bin) & ring.word(1, bit)  # the only opening: one bit per element
    if transcript is not None:
        transcript.append(c)
    return ring.xor_public_bit(c, r_arith)


def msb_shares(key, shares: jax.Array, transcript: list | None = None) -> jax.Array:
    """Additive shares of the most significant bit of the value shared by ``shares`` (raw arrays).

    ``shares`` is ``uint64[n_parties, *shape]``; returns the same shape. If ``transcript`` is a
    list, every opened array is appended to it (used by the privacy tests). See :func:`msb`.
    """
    return msb_from_keys(jax.random.split(key, MSB_KEYS), shares, transcript)


def msb_from_keys(keys, shares: jax.Array, transcript) -> jax.Array:
    """:func:`msb_shares` with its ``MSB_KEYS`` keys already split (callers that need one more key
    split once: every PRNG call site costs compile time)."""
    n, shape = shares.shape[0], tuple(shares.shape[1:])
    # keys: [compressor and generate triples, B2A bit, carry-tree triples]; each group of ANDs
    # draws one stacked triple, sliced per step (one PRNG call site per group).
    n_csa = 2 * (n - 2)
    size = math.prod(shape)
    words_t, bits = shares.dtype, ring.bits_of(shares)
    one = ring.word(1, shares)
    pre = dealer.and_triple(keys[0], (n_csa + 1,) + shape, n, dtype=words_t)
    words = _words_of_shares(shares)
    if n > 2:
        words = _carry_save(_slice_triple(pre, 0, n_csa), words, transcript)
    w0, w1 = words[:, 0], words[:, 1]
    g = _and_with_triple(tuple(t[:, n_csa] for t in pre), w0, w1, "msb/adder", transcript)
    p = w0 ^ w1
    # The carry into bit 63 is the generate of bits 0..62: shifted up by one, with a bottom bit
    # that neither generates nor passes on a carry, it is the generate of all 64 bits.
    flat = (n, size)
    tree = dealer.and_triple(keys[2], (sum(tree_words(size, bits)),), n, fanout=2, dtype=words_t)
    c = _carry_tree(tree, (g << one).reshape(flat), (p << one).reshape(flat), transcript)
    c = ((c[:, :, None] >> jnp.arange(bits, dtype=words_t)[None, None]) & one).reshape(n, -1)[:, :size]
    bit = (p >> ring.word(bits - 1, p)) ^ c.reshape(p.shape)  # p_63 xor carry_63 (l = 64)
    return b2a_bit(keys[1], bit, transcript)


def msb_in_mode(keys, shares: jax.Array, mode: str) -> jax.Array:
    """MSB shares by the protocol, or by the ideal functionality (``mode="ideal"``): the exact bit
    of the opened value, freshly shared with a dealer mask. Both are exact, so the outputs have the
    same distribution (uniform shares of the same bit). The ideal path records the protocol's cost:
    it traces the protocol abstractly (nothing runs) while costs are being collected."""
    if mode != "ideal":
        return msb_from_keys(keys, shares, None)
    if accounting.collecting_now():
        jax.eval_shape(lambda k, s: msb_from_keys(k, s, None), keys, shares)
    bit = ring.party_sum(shares) >> ring.word(ring.bits_of(shares) - 1, shares)
    n = shares.shape[0]
    (mask,) = ring.draw(keys[0], n, (n - 1, tuple(shares.shape[1:])), dtype=shares.dtype)
    return ring.shares_from_mask(bit, mask)
