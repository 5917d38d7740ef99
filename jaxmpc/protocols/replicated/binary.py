r"""The replicated family's binary kernels: XOR replicated sharing of ring words, AND, the
conversion of a bit to an arithmetic sharing (B2A, bit injection) and the MSB of a replicated
arithmetic value by A2B with a carry-lookahead adder on bit-packed words. No dealer. Words are
:math:`\ell`-bit (``uint64`` or ``uint32``: the ring of the components' dtype).

Binary replicated sharing (ABY3, Mohassel & Rindal, CCS 2018, Sec. 2.2; Araki et al., CCS 2016):
:math:`w = w_0 \oplus w_1 \oplus w_2` with party :math:`i` holding :math:`(w_i, w_{i+1})`, the same
layout as the arithmetic components over :math:`\mathbb{Z}_2^{\ell}` (XOR is the addition), so XOR,
shifts and masks with public words are local.

- AND (ABY3 Sec. 2.2, over bits): :math:`z_i = (x_i \wedge y_i) \oplus (x_i \wedge y_{i+1}) \oplus
  (x_{i+1} \wedge y_i) \oplus \alpha_i` with an XOR zero-sharing :math:`\alpha`, then party
  :math:`i` sends :math:`z_i` to party :math:`i-1`: 1 round, one word per word.
- MSB (ABY3 Sec. 5.3, bit decomposition): party 0 holds :math:`x_0` and :math:`x_1`, so it inputs
  :math:`x_0 + x_1` as a binary sharing (1 round, one word from party 0 to party 1), and
  :math:`x_2` is already one (its holders hold it; the other components are 0). The two words are
  added by the carry-lookahead reduction of the additive family's adder
  (:mod:`jaxmpc.protocols.additive.binary`: the generate word, then :math:`\log_2 \ell` packed
  levels), with this family's AND: :math:`1 + \log_2 \ell` rounds (7 on :math:`\mathbb{Z}_{2^{64}}`,
  6 on :math:`\mathbb{Z}_{2^{32}}`); :math:`x_{\ell-1} = p_{\ell-1} \oplus c_{\ell-1}`.
- B2A of a bit :math:`b = b_0 \oplus b_1 \oplus b_2` (ABY3 Sec. 5.3, bit injection, with the
  arithmetic XOR :math:`u \oplus v = u + v - 2uv`): party 0 knows :math:`t = b_0 \oplus b_1` and
  inputs it arithmetically (1 round, one ring element from party 0 to party 1);
  :math:`b_2` is an arithmetic sharing as it stands; :math:`b = t + b_2 - 2\,t\,b_2` with one
  replicated product (1 round).

Every message is masked by randomness of a pairwise key that its receiver lacks, so it is uniform
to the receiver.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ...core import ring
from ...trace import accounting
from ..additive.binary import tree_levels, tree_words
from . import prf
from .mult import reshare_product

MSB_KEYS = 3  # keys one MSB consumes: the input of x_0 + x_1, the ANDs' zero-sharings, the B2A
B2A_ROUNDS = 2


def msb_rounds(n_parties: int = prf.N_PARTIES, ring_bits: int = 64) -> int:
    r"""Rounds of :func:`msb_from_keys` on :math:`\mathbb{Z}_{2^\ell}`: the input (1), the generate
    word (1), the :math:`\log_2 \ell` tree levels and B2A (2): 10 on Z_2^64, 9 on Z_2^32."""
    return 1 + 1 + len(tree_levels(ring_bits)) + B2A_ROUNDS


MSB_ROUNDS = msb_rounds()  # on Z_2^64


def msb_and_words(size: int, bits: int = 64) -> int:
    r"""Words each party sends in the AND gates of :func:`msb` of ``size`` elements of
    :math:`\ell` bits: the generate word (``size``), then per packed word of
    :func:`~jaxmpc.protocols.additive.binary.tree_words` 2 (every level but the last: generate and
    propagate) and 1 (the last)."""
    w = tree_words(size, bits)
    return int(size) + 2 * sum(w[:-1]) + w[-1]


def xor_share(key, words: jax.Array, n_parties: int = 3) -> jax.Array:
    """XOR replicated components of the words ``words``: components 0 and 1 uniform (from the
    streams of :func:`jaxmpc.protocols.replicated.prf.streams`), component 2 the correction."""
    (r,) = prf.streams(key, tuple(words.shape), dtype=words.dtype)
    return ring.xor_shares_from_mask(words, r[:2])


def _input(r0: jax.Array, v: jax.Array, name: str, xor: bool, transcript) -> jax.Array:
    """A value ``v`` that party 0 knows, shared as components ``(r0, v - r0, 0)`` (XOR:
    ``(r0, v ^ r0, 0)``), ``r0`` from the key :math:`k_0` of parties 0 and 2: party 0 sends the
    middle component to party 1 (1 round, one element, uniform to party 1)."""
    accounting.record(name, n_parties=prf.N_PARTIES, rounds=1, elements_opened=int(v.size),
                      bits_per_element=ring.bits_of(v), recipients=1, senders=1)
    mid = (v ^ r0) if xor else (v - r0)
    if transcript is not None:
        transcript.append(mid)
    return jnp.stack([r0, mid, jnp.zeros_like(v)])


def and_shares(key, x: jax.Array, y: jax.Array, name: str = "and", transcript: list | None = None,
               r: jax.Array | None = None) -> jax.Array:
    r"""XOR components of :math:`x \wedge y` (bitwise on :math:`\ell`-bit words) from XOR
    components of ``x`` and ``y`` (``uint64[3, ...]`` or ``uint32[3, ...]``, broadcast against each
    other).

    Protocol:
        1. Party :math:`i` computes :math:`z_i = (x_i \wedge (y_i \oplus y_{i+1})) \oplus
           (x_{i+1} \wedge y_i) \oplus \alpha_i`, :math:`\alpha_i = r_i \oplus r_{i+1}`.
        2. Party :math:`i` sends :math:`z_i` to party :math:`i-1` (one round).

    Cost (ABY3 Sec. 2.2): 1 round; each party sends :math:`wm` bytes for :math:`m` output words
    (:math:`w = \ell/8`).

    Example:
        >>> import jax, jax.numpy as jnp; jax.config.update("jax_enable_x64", True)
        >>> from jaxmpc.core import ring
        >>> kx, ky, kz = jax.random.split(jax.random.key(0), 3)
        >>> x, y = xor_share(kx, jnp.uint64(0b1100)), xor_share(ky, jnp.uint64(0b1010))
        >>> int(ring.party_xor(and_shares(kz, x, y)))
        8
    """
    shape = jnp.broadcast_shapes(x.shape[1:], y.shape[1:])
    if r is None:
        (r,) = prf.streams(key, shape, dtype=x.dtype)
    accounting.record(name, n_parties=prf.N_PARTIES, rounds=1, elements_opened=int(np.prod(shape, dtype=np.int64)),
                      bits_per_element=ring.bits_of(x), recipients=1)
    z = (x & (y ^ prf.next_(y))) ^ (prf.next_(x) & y) ^ prf.xor_zero_sharing(r)
    if transcript is not None:
        transcript.append(z)
    return z


def b2a_bit(key, bit: jax.Array, transcript: list | None = None) -> jax.Array:
    r"""Arithmetic replicated components of a bit from XOR components of it (in bit 0 of each word).

    Protocol (bit injection, ABY3 Sec. 5.3):
        1. Party 0 inputs :math:`t = b_0 \oplus b_1` arithmetically: components
           :math:`(r_0, t - r_0, 0)`, the middle one sent to party 1 (one round).
        2. :math:`[b_2] = (0, 0, b_2)` (local: parties 1 and 2 hold :math:`b_2`).
        3. :math:`[b] = [t] + [b_2] - 2 [t][b_2]`, one replicated product (one round).

    Cost: 2 rounds; party 0 sends :math:`2wm` bytes, parties 1 and 2 :math:`wm`
    (:math:`w = \ell/8`).
    """
    shape = tuple(bit.shape[1:])
    r_in, r_mul = prf.streams(key, shape, shape, dtype=bit.dtype)
    one = ring.word(1, bit)
    t = _input(r_in[0], (bit[0] ^ bit[1]) & one, "b2a/input", False, transcript)
    b2 = jnp.stack([jnp.zeros_like(bit[2]), jnp.zeros_like(bit[2]), bit[2] & one])
    tb = reshare_product(None, t, b2, jnp.multiply, "b2a/mul", transcript=transcript, r=r_mul)
    return t + b2 - ring.word(2, tb) * tb


def _carry_tree(r_levels, g: jax.Array, p: jax.Array, transcript) -> jax.Array:
    r"""XOR components of the carry out of bit :math:`\ell - 1` of each element, packed
    :math:`\ell` per word: the additive family's packed carry-lookahead reduction
    (:func:`jaxmpc.protocols.additive.binary._carry_tree`, whose docstring derives it) with this
    family's AND, :math:`\log_2 \ell` levels. ``g, p``: ``[3, m]`` words; ``r_levels``: the
    zero-sharing streams of each level, ``[3, 2, k_j]``. Returns ``[3, ceil(m / l)]``."""
    n = g.shape[0]
    gp = jnp.stack([g, p], axis=1)  # [3, 2, words]
    levels = tree_levels(ring.bits_of(g))
    keep_g = np.array([~0, 0], np.int64).astype(g.dtype).reshape(1, 2, 1)
    for j, (s, mask) in enumerate(levels):
        sh = ring.word(s, g)
        if gp.shape[2] > 1:
            if gp.shape[2] % 2:
                gp = jnp.pad(gp, ((0, 0), (0, 0), (0, 1)))
            pairs = gp.reshape(n, 2, -1, 2)
            m = ring.word(mask, g)

            def pack(v):
                return (v[..., 0] & m) ^ ((v[..., 1] & m) << sh)

            hi, lo = pack(pairs >> sh), pack(pairs)
        else:
            hi, lo = gp >> sh, gp
        fan = 2 if j < len(levels) - 1 else 1  # the last level needs only G
        z = and_shares(None, hi[:, 1:2], lo[:, :fan], "msb/adder", transcript, r=r_levels[j][:, :fan])
        gp = ring.materialize((hi[:, :fan] & jnp.asarray(keep_g[:, :fan])) ^ z)
    return gp[:, 0]


def msb_from_keys(keys, shares: jax.Array, transcript: list | None = None) -> jax.Array:
    """Arithmetic components of the most significant bit of the value whose replicated
    components are ``shares`` (``uint64[3, *shape]``, or ``uint32``), from :data:`MSB_KEYS` keys. If
    ``transcript`` is a list, every message is appended to it (the privacy tests)."""
    shape = tuple(shares.shape[1:])
    size = int(np.prod(shape, dtype=np.int64))
    flat = shares.reshape(prf.N_PARTIES, size)
    words_t, bits = shares.dtype, ring.bits_of(shares)
    one = ring.word(1, shares)
    r0 = prf.stream(keys[0], 0, (size,), words_t)
    w0 = _input(r0, flat[0] + flat[1], "msb/input", True, transcript)  # party 0 knows x_0 + x_1
    w1 = jnp.stack([jnp.zeros_like(flat[2]), jnp.zeros_like(flat[2]), flat[2]])
    words = tree_words(size, bits)
    r_g, *r_levels = prf.streams(keys[1], (size,), *[(2, k) for k in words], dtype=words_t)
    g = and_shares(None, w0, w1, "msb/adder", transcript, r=r_g)
    p = w0 ^ w1
    # the carry into bit l-1 is the generate of bits 0..l-2: shifted up by one (see the additive adder)
    c = _carry_tree(r_levels, g << one, p << one, transcript)
    c = ((c[:, :, None] >> jnp.arange(bits, dtype=words_t)[None, None]) & one).reshape(prf.N_PARTIES, -1)[:, :size]
    bit = (p >> ring.word(bits - 1, p)) ^ c
    return b2a_bit(keys[2], bit, transcript).reshape(shares.shape)


def msb_in_mode(keys, shares: jax.Array, mode: str) -> jax.Array:
    """MSB components by the protocol (``"protocol"`` and ``"faithful"``: every component is
    computed as written), or by the ideal functionality (``mode="ideal"``): the exact bit of the
    value, freshly shared, with the protocol's cost recorded (traced abstractly while collecting)."""
    if mode != "ideal":
        return msb_from_keys(keys, shares, None)
    if accounting.collecting_now():
        jax.eval_shape(lambda k, s: msb_from_keys(k, s, None), keys, shares)
    bit = ring.party_sum(shares) >> ring.word(ring.bits_of(shares) - 1, shares)
    (r,) = prf.streams(keys[0], tuple(shares.shape[1:]), dtype=shares.dtype)
    return prf.random_sharing(r, bit)
