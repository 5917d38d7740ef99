r"""Truncation without a dealer: divide a replicated shared value by a public integer.

One option, ``"share"``: ABY3's share truncation :math:`\Pi_{\mathsf{trunc1}}` for three parties
(Mohassel & Rindal, CCS 2018, Sec. 5.1.1; SPU's ``aby3`` ``TruncA`` is the same protocol), for any
divisor :math:`d \in [1, 2^{\ell - 2})` (base 10 included), on :math:`\mathbb{Z}_{2^{64}}` or
:math:`\mathbb{Z}_{2^{32}}` (the ring of the components' words):

1. View the 2-out-of-3 sharing as a 2-out-of-2 one: :math:`a = x_0` (held by parties 0 and 2) and
   :math:`b = x_1 + x_2` (held by party 1), :math:`x = a + b`.
2. Local truncation (SecureML, Mohassel & Zhang 2017, Sec. 3.1) on the signed views:
   :math:`y_0 = \lfloor a/d \rfloor` (parties 0 and 2), :math:`y' = \lceil b/d \rceil` (party 1).
3. Re-share: parties 1 and 2 draw :math:`r` from their common key :math:`k_2`
   (:mod:`jaxmpc.protocols.replicated.prf`); :math:`y_2 = r`, :math:`y_1 = y' - r`, which party 1
   sends to party 0 (uniform to it: it lacks :math:`k_2`). Party :math:`i` now holds
   :math:`(y_i, y_{i+1})`.

Error: :math:`y - x/d = [\{b/d\} > 0] - \{a/d\} - \{b/d\} \in (-1, 1)`: within 1 unit. Failure:
when the signed :math:`a + b` overflows (the two shares have the same sign and
:math:`|a + b| \ge 2^{\ell - 1}`) the result is off by about :math:`2^{\ell}/d`: catastrophic. With
:math:`a` uniform (a product's or a fresh sharing's component 0 is), that happens for a fixed
:math:`x` with probability exactly :math:`|x| / 2^{\ell}` (:func:`failure_rate`): values of
:math:`\ell_x` bits fail with probability below :math:`2^{\ell_x - \ell}` (ABY3's
:math:`2^{-(\ell - \ell_x)}` bound up to a factor of 2). :mod:`jaxmpc.trace.diagnostics` counts
such failures under ``"truncate/share"``, as for the additive family's ``"pair"``.

Cost: 1 round; party 1 sends :math:`wm` bytes (:math:`w = \ell/8`) to party 0 for :math:`m`
elements, the others send
nothing (ABY3 Sec. 5.1.1; SPU ``TruncA``: 1 round, :math:`k` bits). The truncation pairs
:math:`(r, r/2^d)` of ABY3's :math:`\Pi_{\mathsf{trunc2}}` (made by the parties with a binary
circuit, Sec. 5.1.2) would take the truncation out of a product's online round, but only divide by
powers of two and cost a bit decomposition per element offline: not offered here.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ...core import ring
from ...core.keys import check_key
from ...errors import InputTypeError, ProtocolError, ShareMismatchError
from ...trace import accounting, diagnostics
from ..additive.truncation import check_divisor
from . import prf

METHODS = ("share",)
DRAWS = METHODS  # every option draws randomness (and needs a key)


def check_method(truncation: str, n_parties: int) -> None:
    """Raise :class:`~jaxmpc.errors.ProtocolError` for a truncation option this family does not offer."""
    if truncation not in METHODS:
        hint = (" The replicated family has no dealer: its truncation is ABY3's share truncation."
                if truncation in ("dealer", "pair", "exact", "fixed-mask", "local") else "")
        raise ProtocolError(
            f"protocol 'replicated' offers the truncation options {METHODS} (or 'default'), got "
            f"truncation={truncation!r}.{hint} Pass truncation='share' or leave the default.")
    if n_parties != prf.N_PARTIES:
        raise ProtocolError(f"replicated truncation runs among 3 parties, got n_parties={n_parties}.")


def _check_shares(shares, fname: str) -> None:
    if not ring.is_ring_array(shares) or shares.ndim < 1 or shares.shape[0] != prf.N_PARTIES:
        raise InputTypeError(
            f"{fname}: shares must be replicated components uint64[3, *shape] (uint32 on Z_2^32), got "
            f"{getattr(shares, 'dtype', type(shares).__name__)}{list(getattr(shares, 'shape', []))}. "
            "Pass x.shares of a jaxmpc.Shared shared with protocol='replicated'.")


def failure_rate(x, ring_bits: int = ring.RING_BITS):
    r"""The probability that ``"share"`` truncation of the signed ring value :math:`x` is
    catastrophically wrong: :math:`|x| / 2^{\ell}` (exact, over a uniform component :math:`x_0`)."""
    return np.abs(np.asarray(x, np.float64)) / 2.0 ** ring_bits


def truncate_shares(key, shares: jax.Array, divisor, truncation: str = "share",
                    transcript: list | None = None) -> jax.Array:
    r"""Components of :math:`\approx x / d` from components of :math:`x` (``uint64[3, *shape]``;
    ``uint32`` on :math:`\mathbb{Z}_{2^{32}}`, the ring being the words' dtype).

    Args:
        key: PRNG key (the call's counter of the key :math:`k_2` of parties 1 and 2).
        shares: ``uint64[3, *shape]`` replicated components of a signed value :math:`x`.
        divisor: public positive integer :math:`d` below :math:`2^{\ell - 2}` (integer array data,
            may be traced): a scalar, or one divisor per element.
        truncation: ``"share"`` (static; see the module docstring).
        transcript: if a list, the one message (party 1 to party 0, :math:`y_1`) is appended.
    Returns:
        components of the quotient, in the ring of ``shares``.

    Protocol: the module docstring's three steps.

    Cost: 1 round; party 1 sends :math:`wm` bytes (:math:`w = \ell/8`), the others nothing.
    """
    check_key(key)
    _check_shares(shares, "truncate_shares")
    check_method(truncation, shares.shape[0])
    shape = tuple(shares.shape[1:])
    bits = ring.bits_of(shares)
    check_divisor(divisor, shape, bits)
    d = jnp.asarray(divisor, shares.dtype)
    size = int(np.prod(shape, dtype=np.int64))
    accounting.record("truncate/share", n_parties=prf.N_PARTIES, rounds=1, elements_opened=size,
                      bits_per_element=bits, recipients=1, senders=1)
    a = ring.to_signed(shares[0])  # parties 0 and 2
    b = ring.to_signed(shares[1] + shares[2])  # party 1
    ds = d.astype(a.dtype)
    y0 = ring.from_signed(jnp.floor_divide(a, ds), shares.dtype)
    y_b = ring.from_signed(-jnp.floor_divide(-b, ds), shares.dtype)  # the ceiling
    r = prf.stream(key, 2, shape, shares.dtype)  # parties 1 and 2, from k_2
    y1 = y_b - r  # party 1 sends it to party 0: the only message
    if transcript is not None:
        transcript.append(y1)
    out = jnp.stack([y0, y1, r])
    diagnostics.observe_truncation("truncate/share", shares, d, out)  # nothing unless collecting
    return out


def truncate_many(key, shares: list, divisors: list, truncation: str = "share") -> list:
    r""":func:`truncate_shares` of several arrays at once, each with its divisor (a scalar or one
    per element): one call on the flattened arrays concatenated, so one round.

    Cost: that of :func:`truncate_shares` on :math:`\sum_i |x_i|` elements.
    """
    check_key(key)
    if len(shares) != len(divisors):
        raise InputTypeError(f"truncate_many: {len(shares)} share arrays but {len(divisors)} divisors.")
    if not shares:
        return []
    words = getattr(shares[0], "dtype", None)
    for s, d in zip(shares, divisors):
        _check_shares(s, "truncate_many")
        if s.dtype != words:
            raise ShareMismatchError(
                f"truncate_many: share arrays of Z_2^{ring.bits_of(shares[0])} and Z_2^{ring.bits_of(s)} "
                "do not mix: truncate each ring's arrays in a call of their own.")
        check_divisor(d, tuple(s.shape[1:]), ring.bits_of(s))
    n = prf.N_PARTIES
    flat = jnp.concatenate([s.reshape(n, -1) for s in shares], axis=1)
    ds = jnp.concatenate([jnp.broadcast_to(jnp.asarray(d, words), s.shape[1:]).reshape(-1)
                          for s, d in zip(shares, divisors)])
    out = truncate_shares(key, flat, ds, truncation)
    ends = np.cumsum([int(s[0].size) for s in shares])
    return [out[:, end - s[0].size:end].reshape(s.shape) for s, end in zip(shares, ends)]
