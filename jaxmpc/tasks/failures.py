r"""Catastrophic truncation failures, measured: how often each truncation scheme is wrong by far more
than its rounding, against the rate its analysis predicts.

A fixed-point product of two values at :math:`f` fractional bits is a ring integer at scale
:math:`2^{2f}`; truncation divides it by :math:`d = 2^f`. For a product whose real value has
:math:`m` magnitude bits (:math:`|v| \in [2^{m-1}, 2^m)`), the truncation's input has
:math:`k = m + 2f` bits. A *cell* is one ``(fractional_bits, magnitude_bits)`` pair with
:math:`k \le \ell - 2` (the signed ring holds it, with the dealer protocol's headroom).

Per cell, ``trials`` inputs :math:`x` are drawn (:math:`|x|` uniform in :math:`[2^{k-1}, 2^k)`,
random sign), shared, truncated by :math:`2^f` with the scheme and opened. A trial *fails* when the
result is neither :math:`\lfloor x/d \rfloor` nor :math:`\lfloor x/d \rfloor + 1` (the ring
difference read as a signed integer), which is what :mod:`jaxmpc.trace.diagnostics` counts.

Predicted rates (over the dealer's or the sharing's uniform randomness, for the drawn inputs):
``pair`` and ``local`` fail when a uniform ring element plus :math:`x` wraps, with probability
:math:`|x| / 2^{\ell}`, so the prediction is the mean of :math:`|x|/2^{\ell}` over the cell's
inputs (about :math:`0.75 \cdot 2^{k - \ell}`); ``dealer``, ``exact`` and ``fixed-mask`` never
fail inside the headroom (prediction 0).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..core import ring
from ..protocols import interface

PREDICTED_WRAP = ("pair", "local")  # the schemes whose failure is a wrap of x + uniform


@dataclasses.dataclass(frozen=True)
class Cell:
    fractional_bits: int
    magnitude_bits: int

    @property
    def input_bits(self) -> int:
        return self.magnitude_bits + 2 * self.fractional_bits


def cells(fractional_bits, magnitude_bits, ring_bits: int = ring.RING_BITS) -> list[Cell]:
    """The grid's cells whose truncation inputs fit the signed ring with the dealer's headroom."""
    return [Cell(f, m) for f in fractional_bits for m in magnitude_bits
            if 1 <= m + 2 * f <= ring_bits - 2]


@functools.cache
def _chunk_fn(truncation: str, n_parties: int, bits: tuple, fracs: tuple, batch: int,
              ring_bits: int = ring.RING_BITS):
    """jit of one chunk: for one key, ``batch`` trials of every cell. Returns per cell
    (failures, sum of |x| / 2^l)."""
    words = ring.dtype(ring_bits)
    bits_a = jnp.asarray(bits, words)[:, None]
    one = ring.word(1, words)
    d = one << jnp.asarray(fracs, words)[:, None]

    def chunk(key):
        k_x, k_sign, k_share, k_trunc = jax.random.split(key, 4)
        low = jax.random.bits(k_x, (len(bits), batch), words) >> (ring.word(ring_bits + 1, words) - bits_a)
        mag = (one << (bits_a - one)) | low  # |x| in [2^(k-1), 2^k)
        neg = (jax.random.bits(k_sign, (len(bits), batch), words) & one) == 1
        x = jnp.where(neg, -mag, mag)  # the ring element of +-|x|
        shares = ring.share_value(k_share, x, n_parties)
        truncate = interface.family("additive").kernel("truncate")
        out = ring.party_sum(truncate(k_trunc, shares, jnp.broadcast_to(d, x.shape), truncation))
        xs = ring.to_signed(x).astype(jnp.int64)
        off = ring.to_signed(out).astype(jnp.int64) - jnp.floor_divide(xs, d.astype(jnp.int64))
        failed = (off != 0) & (off != 1)
        return failed.sum(axis=1), (mag.astype(jnp.float64) / 2.0 ** ring_bits).sum(axis=1)

    return jax.jit(chunk)


def measure(key, truncation: str, grid: list[Cell], trials: int, *, n_parties: int = 2,
            ring_bits: int = ring.RING_BITS, batch: int = 1 << 14) -> list[dict]:
    """Failures of ``truncation`` over ``trials`` inputs in every cell of ``grid``.

    Args:
        key: PRNG key (split into one key per chunk of ``batch`` trials).
        truncation: a truncation option of the additive family at ``n_parties``.
        grid: cells (:func:`cells`).
        trials: inputs per cell (rounded up to a whole number of chunks).
        n_parties: parties.
        ring_bits: the ring width (the additive family's rings).
        batch: trials per cell in one compiled call.
    Returns:
        One record per cell: ``ring``, ``fractional_bits``, ``truncation``, ``magnitude_bits``,
        ``trials``, ``failures``, ``measured_rate``, ``predicted_rate``, ``n_parties``.
    """
    interface.protocol("additive", n_parties, ring_bits)  # raises for what the family lacks
    interface.family("additive").check_truncation(truncation, n_parties)
    batch = max(1, min(batch, trials))
    chunks = -(-trials // batch)
    fn = _chunk_fn(truncation, n_parties, tuple(c.input_bits for c in grid),
                   tuple(c.fractional_bits for c in grid), batch, ring_bits)
    failures = np.zeros(len(grid), np.int64)
    mass = np.zeros(len(grid))
    for k in jax.random.split(key, chunks):
        f, m = fn(k)
        failures += np.asarray(f)
        mass += np.asarray(m)
    done = chunks * batch
    out = []
    for c, fails, w in zip(grid, failures, mass):
        predicted = w / done if truncation in PREDICTED_WRAP else 0.0
        out.append({"ring": ring_bits, "fractional_bits": c.fractional_bits, "truncation": truncation,
                    "magnitude_bits": c.magnitude_bits, "trials": done, "failures": int(fails),
                    "measured_rate": int(fails) / done, "predicted_rate": float(predicted),
                    "n_parties": n_parties})
    return out


def consistent(record: dict, sigmas: float = 5.0) -> bool:
    """Whether a record's failure count agrees with its predicted rate: within ``sigmas`` binomial
    standard deviations (plus one failure, for rates near 0)."""
    n, p = record["trials"], record["predicted_rate"]
    return abs(record["failures"] - n * p) <= sigmas * np.sqrt(n * p * (1 - p)) + 1
