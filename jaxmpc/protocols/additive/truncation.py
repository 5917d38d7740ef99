r"""Truncation: divide a shared ring value by a public integer (the scale, after a product).

Two protocols behind one static option, ``truncation``:

``"dealer"`` (default; any number of parties, any divisor, base 10 included)
    Valid when :math:`|x| < 2^{62} - d`. Never catastrophically wrong inside that range; the result
    is exactly stochastic rounding of :math:`x/d` (:math:`\lceil x/d \rceil` with probability
    :math:`\{x/d\}`, else :math:`\lfloor x/d \rfloor`), for every divisor: unbiased, within 1 unit.

``"local"`` (SecureML, Mohassel & Zhang 2017, Sec. 3.1; 2 parties only)
    Party 0 computes :math:`\lfloor x_0 / d \rfloor`, party 1 computes :math:`-\lfloor -x_1/d \rfloor`
    on the signed views of their shares. No communication. Correct within 1 unit unless the two
    signed shares overflow when added, which happens with probability :math:`|x| / 2^{64}` over
    the (uniform) shares, and then the result is off by about :math:`2^{64}/d`: catastrophic.

``"pair"`` (probabilistic truncation with a dealer pair, as ABY3, Mohassel & Rindal 2018, Sec. 5.1.1,
and SecureQ8; any number of parties)
    The dealer deals :math:`r` uniform in :math:`\mathbb{Z}_{2^{64}}` and
    :math:`r' = \lfloor r/d \rfloor`; the parties open :math:`c = x + r` and output
    :math:`\lfloor c/d \rfloor - r'`. Stochastic rounding (unbiased, within 1 unit) unless
    :math:`x + r` wraps: for a fixed :math:`x` that happens with probability exactly
    :math:`|x| / 2^{64}` over :math:`r` (:func:`pair_failure_rate`), and then the result is off
    by :math:`2^{64}/d`: catastrophic. Values of :math:`\ell_x` bits fail with probability below
    :math:`2^{\ell_x - 64}`.

``"fixed-mask"`` (INSECURE, for audits of published code only)
    The released code of Falcon and Piranha fixes the truncation pair to constants (Falcon: r = r' = 0),
    so that the opening :math:`c = x + r` shows :math:`x` itself to every party. Simulated as
    written with :math:`r = 0`: the parties open :math:`x` and party 0 takes
    :math:`\lfloor x/d \rfloor` (two's complement). Error-free by construction (floor: within 1
    unit, never catastrophic) and private in nothing: it reproduces those papers' precision sweeps,
    not their security.

``"exact"`` (deterministic round-to-nearest, faithful truncation with a secure comparison as in
Escudero, Ghosh, Keller, Rachuri & Scholl, CRYPTO 2020; any number of parties)
    Dealer truncation of :math:`x + \lfloor d/2 \rfloor` with its carry computed instead of
    left to chance: the output is :math:`\lfloor (x + \lfloor d/2 \rfloor)/d \rfloor`, i.e.
    :math:`x/d` rounded to the nearest integer (halves up), the same in every run. Valid for
    :math:`|x| < 2^{62} - d`. Costs one ``msb`` more than ``"dealer"``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ...trace import accounting, diagnostics
from . import binary, dealer
from ...core import ring
from ...errors import InputTypeError, ProtocolError, ShareMismatchError
from ...core.keys import check_key

METHODS = ("dealer", "local", "pair", "fixed-mask", "exact")
DRAWS = ("dealer", "pair", "exact")  # the options that consume dealer material (and a key)
MSB_SHIFT = dealer.MSB_SHIFT
LOW_MASK = dealer.LOW_MASK


def check_method(truncation: str, n_parties: int) -> None:
    """Raise :class:`ProtocolError` for an unknown truncation option, or local truncation with n > 2."""
    if truncation not in METHODS:
        raise ProtocolError(f"truncation must be one of {METHODS}, got {truncation!r}.")
    if truncation == "local" and n_parties != 2:
        raise ProtocolError(
            f"local (SecureML) truncation is only correct for 2 parties, got n_parties={n_parties}: "
            "with more shares the local errors do not cancel and results are garbage (PySyft's bug). "
            "Use truncation='dealer'."
        )


def _check_shares(shares, fname: str) -> None:
    if getattr(shares, "dtype", None) != ring.DTYPE or shares.ndim < 1 or shares.shape[0] < 2:
        raise InputTypeError(
            f"{fname}: shares must be ring shares uint64[n_parties >= 2, *shape], got "
            f"{getattr(shares, 'dtype', type(shares).__name__)}{list(getattr(shares, 'shape', []))}. "
            "Pass x.shares of a jaxmpc.Shared (or call jaxmpc.div_public / mul_public).")


def check_divisor(divisor, shape: tuple[int, ...]) -> None:
    """Raise unless ``divisor`` is an integer (Python int or integer array, traced or not) that
    broadcasts to ``shape`` and, when concrete, lies in :math:`[1, 2^{62})`."""
    if isinstance(divisor, int) and not isinstance(divisor, bool):
        dshape, values = (), np.array([divisor], dtype=object)
    else:
        traced = isinstance(divisor, jax.core.Tracer)
        values = None if traced else np.asarray(divisor)
        dtype = divisor.dtype if traced else values.dtype
        if dtype == bool or not np.issubdtype(dtype, np.integer):
            raise InputTypeError(
                f"truncate_shares: the divisor must be a positive integer (a Python int or an integer "
                f"array such as jnp.uint64(1000)), got dtype {dtype}; a fraction would be rounded "
                "silently.")
        dshape = tuple(jnp.shape(divisor))
    try:
        ok = jnp.broadcast_shapes(dshape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ShareMismatchError(f"truncate_shares: a divisor of shape {dshape} does not broadcast to "
                                 f"the shares' shape {shape}: give a scalar or one divisor per element.")
    if values is not None and values.size:
        lo, hi = int(values.min()), int(values.max())
        if lo < 1 or hi >= 2**62:
            raise ProtocolError(f"truncate_shares: the divisor must lie in [1, 2^62), got values in "
                                f"[{lo}, {hi}].")


def truncate_shares(key, shares: jax.Array, divisor, truncation: str = "dealer",
                    transcript: list | None = None) -> jax.Array:
    r"""Shares of :math:`\approx x / d` from shares of :math:`x` (``uint64[n, *shape]``).

    Args:
        key: PRNG key (dealer material; unused by ``"local"``).
        shares: ``uint64[n_parties, *shape]`` shares of a signed value :math:`x`.
        divisor: public positive integer :math:`d` below 2^62 (uint64 array data, may be traced): a
            scalar, or one divisor per element (an array of ``shape``).
        truncation: one of :data:`METHODS` (static; see the module docstring).
        transcript: if a list, the opened value ``c`` is appended to it (privacy tests; ``"local"``
            opens nothing).
    Returns:
        ``uint64[n_parties, *shape]`` shares of the quotient.

    Protocol (``"dealer"``), with :math:`k = \lfloor 2^{62}/d \rfloor`,
    :math:`\rho = 2^{63} \bmod d` and :math:`x' = x + kd \in [0, 2^{63})`:
        1. The dealer draws :math:`r` uniform (its own) and shares its top bit :math:`r_{63}` and
           :math:`q = \lfloor r_{<63}/d \rfloor` (:func:`jaxmpc.protocols.additive.dealer.truncation_material`).
        2. Party 0 adds :math:`kd`; every party opens :math:`c = x' + r` (its share plus its share
           of :math:`r`; uniform, so it reveals nothing).
        3. With :math:`t = c_{63} \oplus r_{63} = c_{63} + (1 - 2 c_{63}) r_{63}` (linear in the
           shares), :math:`u = c_{<63} + 2^{63} t = x' + r_{<63}` over the integers. The parties
           output shares of :math:`y = \lfloor u/d \rfloor - q - k`, where
           :math:`\lfloor u/d \rfloor = D_0 + t\,\delta` with the public
           :math:`D_0 = \lfloor c_{<63}/d \rfloor` and
           :math:`\delta = \lfloor 2^{63}/d \rfloor + [\,(c_{<63} \bmod d) + \rho \ge d\,]`.
        Error: :math:`y - x/d = ((r_{<63} \bmod d) - ((x' + r_{<63}) \bmod d))/d`. With
        :math:`r_{<63} \bmod d` uniform (up to :math:`d/2^{63}`), this is :math:`-\{x/d\}` with
        probability :math:`1 - \{x/d\}` and :math:`1 - \{x/d\}` otherwise: stochastic rounding,
        unbiased, :math:`|y - x/d| < 1` unit, for every :math:`d`.

    Cost: ``"dealer"``: 1 round, each party sends :math:`8 (n-1)` bytes per element; dealer sends 3
    ring elements per element to each party. ``"local"``: nothing.
    """
    check_key(key)
    return _truncate(shares, divisor, truncation, transcript, key)


def truncate_drawn(masks, shares: jax.Array, divisor, transcript: list | None = None) -> jax.Array:
    """Dealer truncation (:func:`truncate_shares`, ``truncation="dealer"``) with its material already
    drawn: ``masks`` as :func:`jaxmpc.protocols.additive.dealer.truncation_masks` returns them, e.g. from
    :func:`jaxmpc.protocols.additive.dealer.with_truncation` in one draw with the product before it."""
    return _truncate(shares, divisor, "dealer", transcript, None, masks)


def pair_failure_rate(x, ring_bits: int = ring.RING_BITS):
    r"""The probability that ``"pair"`` truncation of the signed ring value :math:`x` is
    catastrophically wrong: :math:`|x| / 2^{\ell}` (exact, over a uniform :math:`r`)."""
    return np.abs(np.asarray(x, np.float64)) / 2.0 ** ring_bits


def _truncate(shares, divisor, truncation, transcript, key, masks=None) -> jax.Array:
    _check_shares(shares, "truncate_shares")
    n = shares.shape[0]
    check_method(truncation, n)
    check_divisor(divisor, tuple(shares.shape[1:]))
    size = int(shares[0].size)
    d = jnp.asarray(divisor, ring.DTYPE)
    if truncation == "local":
        accounting.record("truncate/local", n_parties=n)
        s = ring.to_signed(shares)
        ds = d.astype(ring.SIGNED)
        y0 = jnp.floor_divide(s[0], ds)
        y1 = -jnp.floor_divide(-s[1], ds)
        out = ring.from_signed(jnp.stack([y0, y1]))
        diagnostics.observe_truncation("truncate/local", shares, d, out)  # nothing unless collecting
        return out
    if truncation == "pair":
        accounting.record("truncate/pair", n_parties=n, rounds=1, elements_opened=size,
                          dealer_elements=2 * size)
        return _pair_truncate(shares, d, ring.draw(key, n, *dealer.pair_specs(shares.shape[1:], n)),
                              transcript)
    if truncation == "fixed-mask":
        accounting.record("truncate/fixed-mask", n_parties=n, rounds=1, elements_opened=size)
        return _fixed_mask_truncate(shares, d, transcript)
    if truncation == "exact":
        accounting.record("truncate/exact", n_parties=n, rounds=1, elements_opened=size,
                          dealer_elements=4 * size)
        return _exact_truncate(key, shares, d, transcript)
    accounting.record("truncate/dealer", n_parties=n, rounds=1, elements_opened=size,
                dealer_elements=3 * size)
    if masks is None:
        masks = dealer.truncation_masks(key, shares.shape[1:], n)
    return _dealer_truncate(shares, d, masks, transcript)


_U = jnp.uint64


def _divider(d: jax.Array):
    r"""``v -> floor(v / d)`` for ``uint64`` :math:`v < 2^{63}` and :math:`1 \le d < 2^{62}`.

    A scalar ``d`` (the usual case: one scale) is a division by an invariant integer (Granlund &
    Montgomery, PLDI 1994, Thm. 4.2, with :math:`N = 63`): with :math:`l = \lceil \log_2 d \rceil`
    and :math:`m = \lceil 2^{63+l}/d \rceil < 2^{64}`,
    :math:`\lfloor v/d \rfloor = \lfloor m v / 2^{63+l} \rfloor`, i.e. the high word of the
    128-bit product :math:`m v` shifted right by :math:`l - 1` (:math:`d = 1`: :math:`v`). Four
    32-bit multiplies per element that vectorise, instead of a 64-bit division that does not
    (measured faster on CPU); :math:`m` costs one 64-step long division per scalar.
    An array ``d`` (one divisor per element) uses the hardware division.
    """
    if jnp.ndim(d) != 0:
        return lambda v: v // d
    one, low32 = _U(1), _U(0xFFFFFFFF)  # made here: at import time x64 may still be off
    l = _U(64) - lax.clz(d - one)  # ceil(log2 d), 0 for d = 1

    def step(_, carry):  # long division of 2^(63+l) - 1 (high word 2^(l-1) - 1, low word ~0) by d
        rem, q = carry
        rem = (rem << one) | one  # rem < d <= 2^62: no overflow
        ge = rem >= d
        return jnp.where(ge, rem - d, rem), (q << one) | ge.astype(_U)

    high = jnp.where(l > 0, (one << (l - one)) - one, _U(0))
    _, m = lax.fori_loop(0, 64, step, (high, _U(0)))
    m = m + one
    m0, m1 = m & low32, m >> _U(32)
    shift = jnp.maximum(l, one) - one

    def divide(v):
        v0, v1 = v & low32, v >> _U(32)
        p00, p01, p10, p11 = v0 * m0, v0 * m1, v1 * m0, v1 * m1
        mid = (p00 >> _U(32)) + (p01 & low32) + (p10 & low32)
        high_word = p11 + (p01 >> _U(32)) + (p10 >> _U(32)) + (mid >> _U(32))
        return jnp.where(d == one, v, high_word >> shift)

    return divide


def _dealer_truncate(shares: jax.Array, d: jax.Array, masks, transcript) -> jax.Array:
    """Steps 2-3 of the dealer protocol with the dealer's draws ``masks`` (see truncate_shares).

    The dealer's material is :func:`jaxmpc.protocols.additive.dealer.truncation_material`, except that the shares of
    r are never formed: the opening sum_i (x'_i + r_i) equals sum_i x'_i + r, the same bits.

    An output of at most ``ring.SMALL_DRAW`` words is stored once (``ring.materialize``): its
    consumers (the next product's masked opening, its combination, the opened product of the fast
    path) read it several times, and XLA would otherwise recompute the whole truncation inside each
    of them."""
    r, m_msb, m_q = masks
    divide = _divider(d)  # floor(. / d) for values below 2^63
    r_msb = ring.shares_from_mask(r >> MSB_SHIFT, m_msb)
    q = ring.shares_from_mask(divide(r & jnp.uint64(LOW_MASK)), m_q)
    # one division for the constants (per element when d is): floor(2^62/d) = floor(q63/2), and
    # rho = 2^63 mod d = 2^63 - d q63
    q63 = jnp.uint64(1 << MSB_SHIFT) // d
    k = q63 >> jnp.uint64(1)
    rho = jnp.uint64(1 << MSB_SHIFT) - q63 * d
    c = ring.party_sum(shares) + k * d + r  # the only opening
    if transcript is not None:
        transcript.append(c)
    c_msb, c_low = c >> MSB_SHIFT, c & jnp.uint64(LOW_MASK)
    d0 = divide(c_low)
    delta = q63 + ((c_low - d0 * d) + rho >= d).astype(ring.DTYPE)  # floor((c_low + 2^63)/d) - d0
    # shares of t = c_63 XOR r_63 = c_63 + (1 - 2 c_63) r_63, times delta, minus q; party 0 adds
    # the public part c_63 delta + d0 - k
    one = jnp.uint64(1)
    y = ring.per_party((one - (c_msb << one)) * delta, r_msb) * r_msb - q
    out = ring.add_to_party0(y, c_msb * delta + d0 - k)
    if out.size <= ring.SMALL_DRAW:
        out = ring.materialize(out)
    diagnostics.observe_truncation("truncate/dealer", shares, d, out)  # nothing unless collecting
    return out


def _pair_truncate(shares: jax.Array, d: jax.Array, masks, transcript) -> jax.Array:
    r"""``"pair"`` truncation with the dealer's draws ``masks = (r, m_q)``: shares of
    :math:`r' = \lfloor r/d \rfloor` (``m_q`` its first n-1 shares); the shares of :math:`r`
    are never formed, the opening being their sum plus the parties' (the same bits)."""
    r, m_q = masks
    rq = ring.shares_from_mask(r // d, m_q)
    c = ring.party_sum(shares) + r  # the only opening: uniform whatever x is
    if transcript is not None:
        transcript.append(c)
    out = ring.add_to_party0(-rq, c // d)
    diagnostics.observe_truncation("truncate/pair", shares, d, out)  # nothing unless collecting
    return out


def _fixed_mask_truncate(shares: jax.Array, d: jax.Array, transcript) -> jax.Array:
    """``"fixed-mask"`` truncation: the constant pair r = r' = 0, so the opening is x (INSECURE)."""
    c = ring.party_sum(shares)  # x + 0: the secret itself, to every party
    if transcript is not None:
        transcript.append(c)
    y = ring.from_signed(jnp.floor_divide(ring.to_signed(c), d.astype(ring.SIGNED)))
    out = ring.add_to_party0(jnp.zeros_like(shares), y)
    diagnostics.observe_truncation("truncate/fixed-mask", shares, d, out)
    return out


def _exact_truncate(key, shares: jax.Array, d: jax.Array, transcript) -> jax.Array:
    r"""``"exact"`` truncation: :math:`\lfloor (x + \lfloor d/2 \rfloor)/d \rfloor`, every run.

    Protocol (the notation of :func:`truncate_shares`' dealer protocol, on
    :math:`x' = x + \lfloor d/2 \rfloor + kd \in [0, 2^{63})`):
        1. The dealer draws :math:`r` (its own) and shares :math:`r_{63}`,
           :math:`q = \lfloor r_{<63}/d \rfloor` and :math:`\rho_r = r_{<63} \bmod d`.
        2. The parties open :math:`c = x' + r`; with :math:`t = c_{63} \oplus r_{63}` (linear
           in the shares), :math:`u = c_{<63} + 2^{63} t = x' + r_{<63}`, and
           :math:`\lfloor u/d \rfloor = D_0 + t\,\delta` as in the dealer protocol.
        3. :math:`\lfloor u/d \rfloor = \lfloor x'/d \rfloor + q + b` with the carry
           :math:`b = [\,u \bmod d < \rho_r\,]`. :math:`u \bmod d = e_0 + t (e_1 - e_0)` for the
           public :math:`e_0 = c_{<63} \bmod d` and :math:`e_1 = (e_0 + \rho) \bmod d`, so
           :math:`w = u \bmod d - \rho_r \in (-d, d)` is linear in the shares, and
           :math:`b` is the ``msb`` of :math:`w` (the secure comparison).
        4. Output :math:`D_0 + t\,\delta - q - k - b`.

    Cost: the dealer protocol's (1 round, :math:`8(n-1)` bytes sent per element) plus one ``msb``
    of :math:`m` elements; the dealer deals 4 ring elements per element plus the msb's material.
    """
    n, shape = shares.shape[0], shares.shape[1:]
    k_mat, k_msb = jax.random.split(key)
    r, m_msb, m_q, m_rem = ring.draw(k_mat, n, *dealer.exact_specs(shape, n))
    divide = _divider(d)
    r_low = r & jnp.uint64(LOW_MASK)
    r_quo = divide(r_low)
    r_msb = ring.shares_from_mask(r >> MSB_SHIFT, m_msb)
    q = ring.shares_from_mask(r_quo, m_q)
    rem = ring.shares_from_mask(r_low - r_quo * d, m_rem)
    q63 = jnp.uint64(1 << MSB_SHIFT) // d
    k = q63 >> jnp.uint64(1)
    rho = jnp.uint64(1 << MSB_SHIFT) - q63 * d
    c = ring.party_sum(shares) + (d >> jnp.uint64(1)) + k * d + r  # the opening
    if transcript is not None:
        transcript.append(c)
    c_msb, c_low = c >> MSB_SHIFT, c & jnp.uint64(LOW_MASK)
    d0 = divide(c_low)
    e0 = c_low - d0 * d
    over = e0 + rho >= d
    delta = q63 + over.astype(ring.DTYPE)
    e1 = e0 + rho - jnp.where(over, d, jnp.uint64(0))
    t = ring.xor_public_bit(c_msb, r_msb)
    w = ring.add_to_party0(ring.per_party(e1 - e0, t) * t, e0) - rem
    b = binary.msb_from_keys(jax.random.split(k_msb, binary.MSB_KEYS), w, transcript)
    out = ring.add_to_party0(ring.per_party(delta, t) * t, d0 - k) - q - b
    diagnostics.observe_truncation("truncate/exact", shares, d, out)
    return out


def truncate_many(key, shares: list, divisors: list, truncation: str = "dealer") -> list:
    r""":func:`truncate_shares` of several arrays at once: one dealer draw, one opening round.

    Bit-identical to truncating the concatenation of the flattened arrays (each element with its
    own divisor) and splitting the result, without copying the shares into one array, and each
    array keeps a scalar divisor (3 divisions per element where a per-element divisor needs 5).

    Args:
        key: PRNG key.
        shares: list of ``uint64[n_parties, *shape_i]`` shares (same ``n_parties``).
        divisors: one divisor per array (a scalar, or an array of ``shape_i``).
        truncation: one of :data:`METHODS`.
    Returns:
        The list of truncated shares.

    Cost: that of :func:`truncate_shares` on :math:`\sum_i |x_i|` elements (1 round with the dealer).
    """
    check_key(key)
    if len(shares) != len(divisors):
        raise InputTypeError(f"truncate_many: {len(shares)} share arrays but {len(divisors)} divisors.")
    if truncation == "local" or not shares:
        return [truncate_shares(key, s, d, truncation) for s, d in zip(shares, divisors)]
    for s, d in zip(shares, divisors):
        _check_shares(s, "truncate_many")
        check_divisor(d, tuple(s.shape[1:]))
    n = shares[0].shape[0]
    if any(s.shape[0] != n for s in shares):
        raise InputTypeError(f"truncate_many: every array needs the same number of parties, got "
                             f"{[s.shape[0] for s in shares]}.")
    if truncation != "dealer":  # one call on the concatenation, a divisor per element
        return _truncate_concatenated(key, shares, divisors, truncation)
    check_method(truncation, n)
    sizes = [int(s[0].size) for s in shares]
    total = sum(sizes)
    accounting.record("truncate/dealer", n_parties=n, rounds=1, elements_opened=total,
                      dealer_elements=3 * total)
    r, m_msb, m_q = dealer.truncation_masks(key, (total,), n)
    out, start = [], 0
    for s, d, size in zip(shares, divisors, sizes):
        part = slice(start, start + size)
        mask_shape = (n - 1,) + tuple(s.shape[1:])
        masks = (r[part].reshape(s.shape[1:]), m_msb[:, part].reshape(mask_shape),
                 m_q[:, part].reshape(mask_shape))
        out.append(_dealer_truncate(s, jnp.asarray(d, ring.DTYPE), masks, None))
        start += size
    return out


def _truncate_concatenated(key, shares: list, divisors: list, truncation: str) -> list:
    """:func:`truncate_shares` of the flattened arrays concatenated (one divisor per element), split
    (the arrays checked by :func:`truncate_many`)."""
    n = shares[0].shape[0]
    flat = jnp.concatenate([s.reshape(n, -1) for s in shares], axis=1)
    ds = jnp.concatenate([jnp.broadcast_to(jnp.asarray(d, ring.DTYPE), s.shape[1:]).reshape(-1)
                          for s, d in zip(shares, divisors)])
    out = truncate_shares(key, flat, ds, truncation)
    ends = np.cumsum([int(s[0].size) for s in shares])
    return [out[:, end - s[0].size:end].reshape(s.shape) for s, end in zip(shares, ends)]
