"""Communication cost, tallied at trace time from the protocol code that actually runs.

Every protocol calls :func:`record` once per communication step it performs. Costs depend only on
shapes, party counts and the ring, never on values, so they are known when JAX traces the function:
:func:`tally` traces a function (without running it) and collects the records.

Conventions (per simulated run, i.e. per element of any ``vmap``):
- an *opening* broadcasts each party's share of every opened element to the n-1 others, so it costs
  ``bytes_per_party = (n-1) * elements * bits / 8``; openings that happen together are one round;
- dealer material is counted as the bytes of correlated randomness each party receives;
- a loop body traced once but executed k times is wrapped in :func:`repeat` so it counts k times;
- rounds of successive operations add up (sequential composition; independent operations that a
  scheduler could overlap are not merged, so the round count is an upper bound for a whole program).
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable

_ACTIVE: list["Tally"] = []
_REPEAT: list[int] = [1]


@dataclasses.dataclass
class OpCost:
    """Cost of one operation kind, summed over its calls."""

    calls: int = 0
    rounds: int = 0
    bytes_per_party: int = 0
    elements_opened: int = 0
    dealer_bytes_per_party: int = 0

    def add(self, other: "OpCost") -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclasses.dataclass
class Tally:
    """Per-operation costs collected while tracing."""

    n_parties: int | None = None
    ops: dict[str, OpCost] = dataclasses.field(default_factory=dict)

    def add(self, name: str, cost: OpCost) -> None:
        self.ops.setdefault(name, OpCost()).add(cost)


def record(name: str, *, n_parties: int, rounds: int = 0, elements_opened: int = 0,
           bits_per_element: int = 64, dealer_elements: int = 0, dealer_bits: int = 64) -> None:
    """Record one communication step of protocol ``name`` into the active tally (no-op otherwise).

    Args:
        name: the operation, e.g. ``"mul"`` or ``"truncate/dealer"``.
        n_parties: parties taking part.
        rounds: sequential message exchanges of this step.
        elements_opened: elements whose shares every party broadcasts.
        bits_per_element: 64 for ring elements, 1 for single bits.
        dealer_elements: correlated-randomness elements each party receives from the dealer.
        dealer_bits: bits per dealer element.
    """
    if not _ACTIVE:
        return
    k = _REPEAT[-1]
    bytes_pp = (n_parties - 1) * elements_opened * bits_per_element // 8
    cost = OpCost(calls=k, rounds=k * rounds, bytes_per_party=k * bytes_pp,
                  elements_opened=k * elements_opened,
                  dealer_bytes_per_party=k * dealer_elements * dealer_bits // 8)
    for t in _ACTIVE:
        t.n_parties = n_parties if t.n_parties is None else max(t.n_parties, n_parties)
        t.add(name, cost)


@contextlib.contextmanager
def repeat(k: int):
    """Count every record made inside as ``k`` executions (a loop body traced once, run k times)."""
    _REPEAT.append(_REPEAT[-1] * int(k))
    try:
        yield
    finally:
        _REPEAT.pop()


@contextlib.contextmanager
def collecting():
    """Collect records made while the block runs (or traces) into a fresh :class:`Tally`."""
    t = Tally()
    _ACTIVE.append(t)
    try:
        yield t
    finally:
        _ACTIVE.remove(t)


def tally(fn: Callable, *args, **kwargs) -> Tally:
    """Trace ``fn(*args, **kwargs)`` abstractly (nothing runs) and return the costs it records."""
    import jax

    with collecting() as t:
        jax.eval_shape(lambda *a: fn(*a, **kwargs), *args)
    return t
