r"""Secure comparison: most significant bit, ReLU, less / greater / equal, sign, absolute value,
maximum / minimum, clamp, select.

Written once against the protocol family's ``msb`` kernel (for the additive family, A2B with a
carry-lookahead adder: :mod:`jaxmpc.protocols.additive.binary`): the sign bit of a shared ring
value. ReLU is :math:`\mathrm{msb}(-x) \cdot x`, comparisons are the sign of a difference, maximum
is a selection by a comparison bit.

The results of comparisons are plain-integer sharings (``fxp=None``) of 0/1 bits; a product of such a
bit and a fixed-point value needs no truncation (:func:`jaxmpc.mul`).

Valid range: :func:`msb` is exact for every ring element (it is the two's complement sign bit);
comparisons of :math:`x` and :math:`y` are correct when :math:`|x - y| < 2^{63}`, hence for all
fixed-point values within the ring's headroom (:math:`|v| < 2^{62}`).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..core.fixedpoint import check_numeric
from ..core.keys import check_key
from ..errors import InputTypeError
from ..protocols import interface
from ..protocols.arith import mul
from ..protocols.interface import check_mode
from ..protocols.shared import Shared, check_same_parties, concatenate



def msb_kernel(x: Shared):
    """The ``msb`` kernel of ``x``'s family and the number of keys it takes."""
    k = interface.kernels_of(x).kernels["msb"]
    return k.body, k.keys


def _bit_and_key(key, v: Shared, mode: str = "protocol"):
    """``(msb(v), key)``: the bit as a plain-integer :class:`Shared`, from the family's ``msb``
    kernel, and the key left for the one product that follows it (one split of ``key``)."""
    body, n_keys = msb_kernel(v)
    keys = jax.random.split(key, 1 + n_keys)  # one split (each PRNG site costs compile time)
    return v.like(body(keys[1:], v.shares, mode), None), keys[0]


def _check_shared(x, fname: str, name: str = "x") -> None:
    if not isinstance(x, Shared):
        raise InputTypeError(
            f"{fname}: {name} must be a jaxmpc.Shared, got {type(x).__name__}. Share it first with "
            f"jaxmpc.share(key, {name}, fxp)."
        )


def _difference(x, y, fname: str) -> Shared:
    """``x - y`` where at least one operand is :class:`Shared` and the other may be public."""
    if isinstance(x, Shared) and isinstance(y, Shared):
        check_same_parties(x, y)
        return x - y
    if isinstance(x, Shared):
        check_numeric(y, "y")
        return x - y
    if isinstance(y, Shared):
        check_numeric(x, "x")
        return (-y) + x
    raise InputTypeError(
        f"{fname}: at least one of x and y must be a jaxmpc.Shared, got {type(x).__name__} and "
        f"{type(y).__name__}. Compare public values with jnp directly."
    )


def msb(key, x: Shared, *, mode: str = "protocol") -> Shared:
    r"""The most significant bit of a shared ring value: :math:`b = [x < 0]` (two's complement).

    Exact for every ring element; for a fixed-point value it is :math:`[x < 0]`.

    Args:
        key: PRNG key (consumed: split for the compressors, the adder and the conversion).
        x: :class:`Shared` of any shape, ``shares: uint64[n_parties, *shape]``, any encoding.
        mode: ``"protocol"`` (default) runs the protocol below; ``"faithful"`` is the same here (it
            differs from ``"protocol"`` only in Beaver's products, see :func:`jaxmpc.protocols.additive.beaver`, and
            this protocol has none: every party's share is already computed as written);
            ``"ideal"`` computes the exact bit of the opened value and shares it afresh (same
            output distribution, same recorded cost, none of the adder's work: for fast numerical
            sweeps). Any other string raises :class:`jaxmpc.ProtocolError` listing these three.
    Returns:
        :class:`Shared` with ``fxp=None``, shape ``x.shape``, holding the bit (0 or 1).

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> k0, k1 = jax.random.split(jax.random.key(0))
        >>> x = jaxmpc.share(k0, [-1.5, 0.0, 2.0], jaxmpc.FixedPoint(10, 3), n_parties=3)
        >>> jaxmpc.reveal(jaxmpc.msb(k1, x)).tolist()
        [1, 0, 0]

    Protocol (the additive family's ``msb`` kernel; :math:`n` parties, :math:`m` elements):
        1. A2B: party :math:`i`'s share :math:`x_i` becomes the XOR-shared word
           :math:`(0, \dots, x_i, \dots, 0)` (local).
        2. Carry-save: 3:2 compressors reduce the :math:`n` words to 2 with the same sum mod
           :math:`2^{64}`; :math:`s = a \oplus b \oplus c` locally and
           :math:`t = ((a \wedge b) \oplus (c \wedge (a \oplus b))) \ll 1` with both ANDs of all
           compressors of a layer in one AND call (:func:`~jaxmpc.protocols.additive.binary.and_shares`); ``binary.csa_layers(n)`` rounds.
        3. Adder on the two words :math:`w_0, w_1`: :math:`g = w_0 \wedge w_1` (1 round),
           :math:`p = w_0 \oplus w_1`. The carry into bit 63 is the group generate of bits 0..62,
           i.e. of all 64 bits of :math:`(g \ll 1, p \ll 1)`, computed by the packed
           carry-lookahead tree of the binary module (6 rounds, about :math:`3m` words opened).
           Then :math:`x_{63} = p_{63} \oplus c_{63}` (local).
        4. B2A of the bit with a dealer random bit (:func:`~jaxmpc.protocols.additive.binary.b2a_bit`, 1 round).

    Cost: :math:`L(n) + 8` rounds, where :math:`L(n)` = ``binary.csa_layers(n)`` (0 for n = 2, 1 for 3,
    3 for 5). With ``(O, D) = binary.msb_words(n, m)``, the words opened and dealt in the AND gates
    (:math:`O = 4(n-2)m + 2m + 3 \sum_{j<5} \lceil m/2^{j+1} \rceil + 2 \lceil m/64 \rceil`,
    :math:`D = 6(n-2)m + 3m + 5 \sum_{j<5} \lceil m/2^{j+1} \rceil + 3 \lceil m/64 \rceil`),
    each party sends :math:`8(n-1) O + (n-1) \lceil m / 8 \rceil` bytes and the dealer sends each
    party :math:`8 D + \lceil 65 m / 8 \rceil` bytes (the B2A's bit messages in whole bytes). For 2 parties and :math:`m` a multiple of 64: :math:`O = 4.9375 m`,
    39.625 m bytes sent per party (a full Kogge-Stone adder: 192.125 m) and 71.25 m dealt.
    """
    check_key(key)
    _check_shared(x, "msb")
    check_mode(mode)
    body, n_keys = msb_kernel(x)
    return x.like(body(jax.random.split(key, n_keys), x.shares, mode), None)


def relu(key, x: Shared, *, mode: str = "protocol") -> tuple[Shared, Shared]:
    r"""ReLU of a shared value and its derivative bit: :math:`y = \max(x, 0)`, :math:`d = [x > 0]`.

    The derivative is 0 at 0 (the PyTorch / JAX convention). Exact for every ring value except
    :math:`-2^{63}` (which has no negation), so for every fixed-point value. The backward pass
    reuses ``d``: :math:`\partial L/\partial x = d \cdot \partial L/\partial y` is
    ``jaxmpc.mul(key, d, grad)``, one Beaver product with no truncation and no second comparison.

    Args:
        key: PRNG key (split for the comparison and the product).
        x: :class:`Shared` of any shape (``shares: uint64[n_parties, *shape]``).
        mode: ``"protocol"`` (default), ``"faithful"`` or ``"ideal"`` (see :func:`msb`; the
            product uses the same mode of :func:`jaxmpc.protocols.additive.beaver`).
    Returns:
        ``(y, drelu)``: ``y`` a :class:`Shared` like ``x``; ``drelu`` a :class:`Shared` with
        ``fxp=None`` holding the bit :math:`[x > 0]`.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> k0, k1 = jax.random.split(jax.random.key(0))
        >>> x = jaxmpc.share(k0, [-1.5, 0.0, 2.25], jaxmpc.FixedPoint(10, 3))
        >>> y, d = jaxmpc.relu(k1, x)
        >>> jaxmpc.reveal(y).tolist(), jaxmpc.reveal(d).tolist()
        ([0.0, 0.0, 2.25], [0, 0, 1])

    Protocol:
        1. :math:`d = \mathrm{msb}(-x)` (:func:`msb`; :math:`-x` is local).
        2. :math:`y = d \cdot x` by Beaver's protocol (:func:`jaxmpc.mul`); :math:`d` is a plain
           integer, so there is no truncation.

    Cost: :func:`msb` plus one Beaver product: :math:`L(n) + 9` rounds; with
    ``(O, D) = binary.msb_words(n, m)`` each party sends :math:`8(n-1)(O + 2m) + (n-1) \lceil m/8 \rceil` bytes
    (55.625 m for 2 parties, :math:`m` a multiple of 64) and the dealer sends each party
    :math:`8(D + 3m) + \lceil 65 m/8 \rceil` bytes.
    """
    check_key(key)
    _check_shared(x, "relu")
    check_mode(mode)
    d, k_mul = _bit_and_key(key, -x, mode)
    return mul(k_mul, d, x, mode=mode), d


def less(key, x, y) -> Shared:
    r"""Shared bit :math:`[x < y]`, computed as :math:`\mathrm{msb}(x - y)`.

    Args:
        key: PRNG key.
        x, y: :class:`Shared` values (same parties and encoding) with broadcastable shapes; one of
            them may be a public array (encoded like the other).
    Returns:
        :class:`Shared` with ``fxp=None`` holding 0 or 1, of the broadcast shape.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> k0, k1, k2 = jax.random.split(jax.random.key(0), 3)
        >>> fxp = jaxmpc.FixedPoint(10, 3)
        >>> x, y = jaxmpc.share(k0, [1.0, 2.0, 3.0], fxp), jaxmpc.share(k1, [2.0, 2.0, 2.0], fxp)
        >>> jaxmpc.reveal(jaxmpc.less(k2, x, y)).tolist()
        [1, 0, 0]

    Protocol: subtract locally, then :func:`msb`. Correct when :math:`|x - y| < 2^{63}` in the ring.

    Cost: that of :func:`msb` on the broadcast shape.
    """
    check_key(key)
    return msb(key, _difference(x, y, "less"))


def greater(key, x, y) -> Shared:
    r"""Shared bit :math:`[x > y]`, computed as :math:`\mathrm{msb}(y - x)`.

    Args, Returns and Cost: as :func:`less` (with the operands swapped).

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> k0, k1 = jax.random.split(jax.random.key(0))
        >>> x = jaxmpc.share(k0, [1.0, 2.0, 3.0], jaxmpc.FixedPoint(10, 3))
        >>> jaxmpc.reveal(jaxmpc.greater(k1, x, 2.0)).tolist()
        [0, 0, 1]
    """
    check_key(key)
    return msb(key, _difference(y, x, "greater"))


def sign(key, x: Shared) -> Shared:
    r"""Shared sign :math:`\mathrm{sgn}(x) = [x > 0] - [x < 0] \in \{-1, 0, 1\}` (0 at 0, like ``jnp.sign``).

    Args:
        key: PRNG key.
        x: :class:`Shared` of any shape.
    Returns:
        :class:`Shared` with ``fxp=None`` holding -1, 0 or 1 (``jaxmpc.mul(key, s, x)`` is
        :math:`|x|` with no truncation).

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> k0, k1 = jax.random.split(jax.random.key(0))
        >>> x = jaxmpc.share(k0, [-0.001, 0.0, 7.0], jaxmpc.FixedPoint(10, 3))
        >>> jaxmpc.reveal(jaxmpc.sign(k1, x)).tolist()
        [-1, 0, 1]

    Protocol: one :func:`msb` on the stacked values :math:`(-x, x)` (both comparisons in the
    same rounds), then :math:`\mathrm{msb}(-x) - \mathrm{msb}(x)` locally.

    Cost: that of :func:`msb` on :math:`2m` elements (same rounds).
    """
    check_key(key)
    _check_shared(x, "sign")
    both = x.like(jnp.stack([-x.shares, x.shares], axis=1))
    bits = msb(key, both)
    return x.like(bits.shares[:, 0] - bits.shares[:, 1], None)


def where(key, bit: Shared, x, y) -> Shared:
    r"""Oblivious select :math:`z = y + b (x - y)`: ``x`` where the shared bit is 1, else ``y``.

    Args:
        key: PRNG key (for the product).
        bit: :class:`Shared` with ``fxp=None`` holding 0/1 bits (e.g. from :func:`less`).
        x, y: :class:`Shared` values (same encoding), or one of them a public array; all three
            shapes must broadcast.
    Returns:
        :class:`Shared` in the encoding of ``x`` / ``y``, of the broadcast shape.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> k0, k1, k2, k3 = jax.random.split(jax.random.key(0), 4)
        >>> fxp = jaxmpc.FixedPoint(10, 3)
        >>> x, y = jaxmpc.share(k0, [1.0, 2.0], fxp), jaxmpc.share(k1, [5.0, -5.0], fxp)
        >>> b = jaxmpc.share(k2, [1, 0], None)
        >>> jaxmpc.reveal(jaxmpc.where(k3, b, x, y)).tolist()
        [1.0, -5.0]

    Protocol: :math:`x - y` locally, one Beaver product with the plain-integer bit (no
    truncation), then add :math:`y` locally.

    Cost: 1 round; each party sends :math:`8(n-1)(|b| + |x - y|)` bytes; the dealer sends
    :math:`8(|b| + |x-y| + |z|)` bytes to each party.
    """
    check_key(key)
    _check_shared(bit, "where", "bit")
    if bit.fxp is not None:
        raise InputTypeError(
            f"where: bit must be a plain-integer Shared (fxp=None) holding 0/1, as returned by "
            f"jaxmpc.less / greater / msb, got one with encoding {bit.fxp!r}."
        )
    diff = _difference(x, y, "where")
    check_same_parties(bit, diff)
    prod = mul(key, bit, diff)
    return prod + y


def maximum(key, x, y) -> Shared:
    r"""Elementwise maximum of shared values: :math:`\max(x, y) = y + [x > y](x - y)`.

    Args:
        key: PRNG key (split for the comparison and the select).
        x, y: :class:`Shared` values (same parties and encoding) with broadcastable shapes; one of
            them may be a public array.
    Returns:
        :class:`Shared` of the broadcast shape, same encoding.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> k0, k1, k2 = jax.random.split(jax.random.key(0), 3)
        >>> fxp = jaxmpc.FixedPoint(10, 3)
        >>> x, y = jaxmpc.share(k0, [1.0, -3.0], fxp), jaxmpc.share(k1, [-2.0, 4.0], fxp)
        >>> jaxmpc.reveal(jaxmpc.maximum(k2, x, y)).tolist()
        [1.0, 4.0]

    Protocol: :func:`greater` then :func:`where`.

    Cost: :func:`msb` plus 1 round (:math:`L(n) + 9` rounds), as :func:`relu`.
    """
    check_key(key)
    diff = _difference(y, x, "maximum")  # validates the operands before the key is consumed
    bit, k_sel = _bit_and_key(key, diff)
    return where(k_sel, bit, x, y)


def _stacked_msb(key, parts: list) -> Shared:
    """One :func:`msb` of several same-shaped differences, stacked on a new first value axis (the
    comparisons share their rounds)."""
    both = parts[0].like(jnp.stack([p.shares for p in parts], axis=1))
    return msb(key, both)


def minimum(key, x, y) -> Shared:
    r"""Elementwise minimum of shared values: :math:`\min(x, y) = y + [x < y](x - y)`.

    Args, Returns: as :func:`maximum`.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> k0, k1, k2 = jax.random.split(jax.random.key(0), 3)
        >>> fxp = jaxmpc.FixedPoint(10, 3)
        >>> x, y = jaxmpc.share(k0, [1.0, -3.0], fxp), jaxmpc.share(k1, [-2.0, 4.0], fxp)
        >>> jaxmpc.reveal(jaxmpc.minimum(k2, x, y)).tolist()
        [-2.0, -3.0]

    Protocol: :func:`less` then :func:`where`. Cost: as :func:`maximum`.
    """
    check_key(key)
    diff = _difference(x, y, "minimum")
    bit, k_sel = _bit_and_key(key, diff)
    return where(k_sel, bit, x, y)


def equal(key, x, y) -> Shared:
    r"""Shared bit :math:`[x = y] = 1 - [x < y] - [y < x]`.

    Args, Returns: as :func:`less`.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> k0, k1 = jax.random.split(jax.random.key(0))
        >>> x = jaxmpc.share(k0, [1.0, 2.0, 2.001], jaxmpc.FixedPoint(10, 3))
        >>> jaxmpc.reveal(jaxmpc.equal(k1, x, 2.0)).tolist()
        [0, 1, 0]

    Protocol: one :func:`msb` of the stacked differences :math:`(x - y, y - x)`, then
    :math:`1 - b_0 - b_1` locally. Exact on the encoded values (equality of ring elements).

    Cost: that of :func:`msb` on :math:`2m` elements.
    """
    check_key(key)
    d = _difference(x, y, "equal")
    bits = _stacked_msb(key, [d, -d])
    return d.like(-(bits.shares[:, 0] + bits.shares[:, 1]), None) + 1


def not_equal(key, x, y) -> Shared:
    r"""Shared bit :math:`[x \ne y] = [x < y] + [y < x]`: as :func:`equal`, same cost.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> k0, k1 = jax.random.split(jax.random.key(0))
        >>> x = jaxmpc.share(k0, [1.0, 2.0], jaxmpc.FixedPoint(10, 3))
        >>> jaxmpc.reveal(jaxmpc.not_equal(k1, x, 2.0)).tolist()
        [1, 0]
    """
    check_key(key)
    d = _difference(x, y, "not_equal")
    bits = _stacked_msb(key, [d, -d])
    return d.like(bits.shares[:, 0] + bits.shares[:, 1], None)


def abs(key, x: Shared) -> Shared:  # noqa: A001 (jaxmpc.abs, as jnp.abs)
    r"""Absolute value :math:`|x| = (1 - 2\,\mathrm{msb}(x))\,x`, exact.

    The factor :math:`s = 1 - 2\,\mathrm{msb}(x) \in \{-1, 1\}` is also the derivative (1 at 0):
    a backward pass is ``jaxmpc.mul(key, s, grad)`` with ``s`` from :func:`sign` or one more msb.

    Args:
        key: PRNG key (split for the comparison and the product).
        x: :class:`Shared` of any shape.
    Returns:
        :class:`Shared` like ``x``.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> k0, k1 = jax.random.split(jax.random.key(0))
        >>> x = jaxmpc.share(k0, [-1.5, 0.0, 2.25], jaxmpc.FixedPoint(10, 3))
        >>> jaxmpc.reveal(jaxmpc.abs(k1, x)).tolist()
        [1.5, 0.0, 2.25]

    Protocol: :func:`msb` of :math:`x`, then one Beaver product of the plain integer :math:`s`
    and :math:`x` (no truncation).

    Cost: :func:`msb` plus one Beaver product, as :func:`relu`.
    """
    check_key(key)
    _check_shared(x, "abs")
    b, k_mul = _bit_and_key(key, x)
    return mul(k_mul, (b * -2) + 1, x)


def clamp(key, x: Shared, lo, hi) -> Shared:
    r"""Clamp to public bounds: :math:`\min(\max(x, lo), hi)` for :math:`lo \le hi` (``torch.clamp``,
    ``jnp.clip``).

    Args:
        key: PRNG key.
        x: fixed-point :class:`Shared` of any shape.
        lo, hi: public real numbers or arrays broadcasting to ``x``, with ``lo <= hi`` everywhere.
    Returns:
        :class:`Shared` like ``x``.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> k0, k1 = jax.random.split(jax.random.key(0))
        >>> x = jaxmpc.share(k0, [-3.0, 0.5, 7.0], jaxmpc.FixedPoint(10, 3))
        >>> jaxmpc.reveal(jaxmpc.clamp(k1, x, -1.0, 1.0)).tolist()
        [-1.0, 0.5, 1.0]

    Protocol: one :func:`msb` of the stacked :math:`(x - lo, hi - x)` gives
    :math:`b_{lo} = [x < lo]` and :math:`b_{hi} = [x > hi]` (never both), then one Beaver product
    of the stacked bits and :math:`(lo - x, hi - x)`:
    :math:`y = x + b_{lo}(lo - x) + b_{hi}(hi - x)`. Exact on the encoded values.

    Cost: :func:`msb` on :math:`2m` elements plus one Beaver product of :math:`2m` elements
    (:math:`L(n) + 9` rounds, as :func:`relu`).
    """
    check_key(key)
    _check_shared(x, "clamp")
    if x.fxp is None:
        raise InputTypeError("clamp: x must be a fixed-point Shared (public bounds are real numbers), "
                             "got a plain-integer one.")
    check_numeric(lo, "lo")
    check_numeric(hi, "hi")
    lo_a, hi_a = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    try:
        bounds_ok = bool(np.all(lo_a <= hi_a)) and np.broadcast_shapes(lo_a.shape, hi_a.shape, x.shape) == x.shape
    except ValueError:
        bounds_ok = False
    if not bounds_ok:
        raise InputTypeError(f"clamp: lo and hi must broadcast to x's shape {x.shape} with lo <= hi "
                             f"everywhere, got lo of shape {lo_a.shape} and hi of shape {hi_a.shape}"
                             + ("" if lo_a.shape != hi_a.shape or np.all(lo_a <= hi_a) else " with lo > hi")
                             + ". Swap or reshape the bounds.")
    k_msb, k_mul = jax.random.split(key)
    lo_d, hi_d = (-x) + lo_a, (-x) + hi_a  # lo - x, hi - x
    bits = _stacked_msb(k_msb, [-lo_d, hi_d])  # [x < lo], [x > hi]
    both = x.like(jnp.stack([lo_d.shares, hi_d.shares], axis=1))
    prod = mul(k_mul, bits, both)
    return x + prod.like(prod.shares[:, 0] + prod.shares[:, 1])


def hardtanh(key, x: Shared, min_val: float = -1.0, max_val: float = 1.0) -> Shared:
    r""":func:`clamp` to :math:`[\text{min\_val}, \text{max\_val}]` (``torch.nn.functional.hardtanh``)."""
    return clamp(key, x, min_val, max_val)


def tournament(key, x: Shared, tags, *, mode: str = "protocol") -> tuple[Shared, Shared]:
    r"""Maximum over the last axis of ``x`` and the public tag row of the entry that holds it.

    Args:
        key: PRNG key (split once per level).
        x: :class:`Shared` of shape ``(*batch, T)``, ``T >= 1``.
        tags: public integer array ``(T, P)``: one row per entry, e.g. ``arange(T)[:, None]`` for
            the arg-max index, or the identity for a one-hot arg-max.
        mode: ``"protocol"``, ``"faithful"`` or ``"ideal"`` (for the comparisons and products, see
            :func:`msb`).
    Returns:
        ``(max, tag)``: :class:`Shared` ``(*batch)`` in ``x``'s encoding, and the winner's tag row,
        :class:`Shared` ``(*batch, P)`` of plain integers. Ties go to the first maximum (as
        ``jnp.argmax``).

    Protocol (knockout, :math:`L = \lceil \log_2 T \rceil` levels):
        1. Pair up the surviving candidates :math:`(a, b)` (an odd one out advances unopposed).
        2. Compare: :math:`c = [b > a]` = :func:`msb` of :math:`a - b` (ties keep :math:`a`).
        3. Select obliviously :math:`v = a + c (b - a)`, :math:`t = t_a + c (t_b - t_a)`: values and
           tag rows in one Beaver product with the 0/1 integer :math:`c` (no truncation). On the
           first level the tags are public, so :math:`t` is local.

    Cost: :math:`L` comparisons (:math:`L(n) + 8` rounds each) and :math:`L` one-round products:
    :math:`L (L(n) + 9)` rounds.
    """
    t = x.shape[-1]
    tags = np.asarray(tags, np.int64)
    sel = None  # the tag rows stay public until the first select
    levels = math.ceil(math.log2(t)) if t > 1 else 0
    keys = jax.random.split(key, max(levels, 1))
    vals = x
    for level in range(levels):
        count = vals.shape[-1]
        m = count // 2
        k_cmp, k_sel = jax.random.split(keys[level])
        a, b = vals[..., 0:2 * m:2], vals[..., 1:2 * m:2]
        win = msb(k_cmp, a - b, mode=mode)  # [b > a]: a tie keeps a, the lower index
        if sel is None:  # public rows: t_a + c (t_b - t_a) is local
            vals_new = a + mul(k_sel, win, b - a, mode=mode)
            sel_new = win.reshape(win.shape + (1,)) * (tags[1:2 * m:2] - tags[0:2 * m:2]) + tags[0:2 * m:2]
        else:  # values and tag rows selected in one Beaver product with the 0/1 integer c
            sa, sb = sel[..., 0:2 * m:2, :], sel[..., 1:2 * m:2, :]
            diffs = a.like(jnp.concatenate([(b - a).shares[..., None], (sb - sa).shares], axis=-1), None)
            prod = mul(k_sel, win.like(win.shares[..., None]), diffs, mode=mode)
            vals_new = a + a.like(prod.shares[..., 0])
            sel_new = sa + sa.like(prod.shares[..., 1:])
        if count % 2:  # the odd one out advances unopposed
            vals_new = concatenate([vals_new, vals[..., 2 * m:]], axis=-1)
            last = (sel[..., 2 * m:, :] if sel is not None else
                    x.like(jnp.zeros(sel_new.shares.shape[:-2] + (1, tags.shape[1]), x.shares.dtype), None)
                    + tags[2 * m:])
            sel_new = concatenate([sel_new, last], axis=-2)
        vals, sel = vals_new, sel_new
    if sel is None:  # a single entry: it wins
        sel = x.like(jnp.zeros(vals.shares.shape + (tags.shape[1],), x.shares.dtype), None) + tags
    return vals[..., 0], sel[..., 0, :]
