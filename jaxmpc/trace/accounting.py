r"""Communication cost, tallied at trace time from the protocol code that actually runs.

Every protocol calls :func:`record` once per communication step it performs. Costs depend only on
shapes, party counts and the ring, never on values, so they are known when JAX traces the function:
:func:`cost` traces a function (without running or compiling it) and returns a :class:`CostReport`;
:func:`tally` returns the raw per-operation :class:`Tally`.

Conventions (per simulated run, i.e. per element of any ``vmap``):

- an *opening* broadcasts each party's share of every opened element to the n-1 others: one message
  of ``elements * bits_per_element`` bits to each, so it costs ``bits_per_party = (n-1) * elements *
  bits_per_element`` bits and ``bytes_per_party = (n-1) * ceil(elements * bits_per_element / 8)``
  bytes (a message is whole bytes: a 1-bit opening of 3 elements sends 1 byte to each other party, not
  0.375); openings that happen together are one round;
- dealer material is counted as the correlated randomness each party receives (offline), one message
  per record: ``dealer_elements * dealer_bits`` bits, rounded up to whole bytes the same way;
- bytes are rounded up per message (per :func:`record`, per recipient), then summed, so every byte
  count is an integer; the exact bit counts are kept beside them (``bits_per_party``, ...);
- rounds of successive operations add up (sequential composition; independent operations that a
  scheduler could overlap are not merged, so the round count is an upper bound for a whole program);
- every party sends the same amount in a broadcast opening, so "per party" is also the largest amount
  any one party sends; ``bytes_total`` sums over the parties. A step in which each party sends to
  fewer parties (replicated sharing's resharing: one neighbour) or only some parties send says so
  (``recipients``, ``senders``); "per party" is then the amount of one sender, the largest.

Loops. A ``lax.scan`` / ``fori_loop`` / ``while_loop`` body is traced once however many times it runs,
so its records count **once** (the cost of one step). To count every step either wrap the loop (or
the body) in ``with repeat(k):`` where ``k`` is the number of steps, or use :func:`scan`, a drop-in
``lax.scan`` that multiplies its body's records by the length (and is immune to JAX tracing a body
twice when a weakly-typed carry gets promoted). Use one or the other, not both. ``lax.cond`` /
``lax.switch`` trace every branch, so their records are the *sum* over branches (an upper bound).

Caching. JAX caches the traces of ``jax.jit``-ed functions (also of ones nested inside ``fn``), and a
cache hit does not re-run the Python code, so its records would be missing. While collecting, every
jit trace cache misses, and a fresh token after each record makes a jitted function that recorded be
traced again each time it is called (only traced: :func:`cost` never compiles); the mechanism is
:mod:`jaxmpc.trace.collector`, shared with the diagnostics. It does not touch the caches used by
normal (non-collecting) calls. Code that cannot be re-traced is still invisible: ahead-of-time
compiled executables (``jit(f).lower(...).compile()``), jaxprs built once and evaluated with
``jax.core.eval_jaxpr``, and Python-level memoisation (``functools.cache``) of traced code.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, Callable

import jax
import numpy as np

from . import collector, diagnostics
from ..errors import InputTypeError, ProtocolError

_TALLIES = collector.Channel("accounting")  # the active tallies
_REPEAT: list[int] = [1]


def _message_bytes(bits: int) -> int:
    """Whole bytes of one message of ``bits`` bits (rounded up: a message is whole bytes)."""
    return -(-int(bits) // 8)


@dataclasses.dataclass
class OpCost:
    """Cost of one operation kind, summed over its calls.

    Bits are exact; bytes are whole bytes per message (each record's message to each recipient
    rounded up to a byte), summed, so they are integers and at least ``bits / 8``.
    """

    calls: int = 0
    rounds: int = 0
    elements_opened: int = 0
    bits_per_party: int = 0
    bits_total: int = 0
    dealer_bits_per_party: int = 0
    n_parties: int = 0
    bytes_per_party: int = 0  # each party sends (the largest: all send the same in a broadcast)
    bytes_total: int = 0  # all parties together
    dealer_bytes_per_party: int = 0  # correlated randomness the dealer sends to each party

    def add(self, other: "OpCost") -> None:
        for f in dataclasses.fields(self):
            if f.name == "n_parties":
                self.n_parties = max(self.n_parties, other.n_parties)
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def scaled(self, k: int) -> "OpCost":
        """This cost repeated ``k`` times."""
        return OpCost(**{f.name: (getattr(self, f.name) if f.name == "n_parties"
                                  else k * getattr(self, f.name)) for f in dataclasses.fields(self)})

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "rounds": self.rounds, "elements_opened": self.elements_opened,
                "bytes_per_party": self.bytes_per_party, "bytes_total": self.bytes_total,
                "dealer_bytes_per_party": self.dealer_bytes_per_party,
                "bits_per_party": self.bits_per_party, "bits_total": self.bits_total,
                "dealer_bits_per_party": self.dealer_bits_per_party}


@dataclasses.dataclass
class Tally:
    """Per-operation costs collected while tracing (in order of first occurrence)."""

    n_parties: int | None = None
    ops: dict[str, OpCost] = dataclasses.field(default_factory=dict)

    def add(self, name: str, cost: OpCost) -> None:
        self.n_parties = cost.n_parties if self.n_parties is None else max(self.n_parties, cost.n_parties)
        self.ops.setdefault(name, OpCost()).add(cost)

    def merge(self, other: "Tally", k: int = 1) -> None:
        """Add ``k`` times the costs of ``other``."""
        for name, c in other.ops.items():
            self.add(name, c.scaled(k))


def record(name: str, *, n_parties: int, rounds: int = 0, elements_opened: int = 0,
           bits_per_element: int = 64, dealer_elements: int = 0, dealer_bits: int = 64,
           recipients: int | None = None, senders: int | None = None) -> None:
    """Record one communication step of protocol ``name`` into the active tallies (no-op otherwise).

    Args:
        name: the operation, e.g. ``"mul"`` or ``"truncate/dealer"``.
        n_parties: parties taking part.
        rounds: sequential message exchanges of this step.
        elements_opened: elements whose shares every party broadcasts to the n-1 others.
        bits_per_element: 64 for ring elements, 1 for single bits.
        dealer_elements: correlated-randomness elements each party receives from the dealer.
        dealer_bits: bits per dealer element.
        recipients: parties each sender sends its message to (default ``n_parties - 1``: a
            broadcast opening; 1 for a resharing that sends each party's share to one neighbour).
        senders: parties that send (default ``n_parties``: all); the per-party figures are those of
            one sender, the largest any party sends.

    Each sending party sends one message of ``elements_opened * bits_per_element`` bits to each of
    its ``recipients`` (by default all n-1 others), and each party receives one of
    ``dealer_elements * dealer_bits`` bits from the dealer; the bytes are those messages rounded up
    to whole bytes (the bits are kept exact beside them).
    """
    if not _TALLIES:
        return
    k = _REPEAT[-1]
    n = int(n_parties)
    to = n - 1 if recipients is None else int(recipients)
    by = n if senders is None else int(senders)
    message = int(elements_opened) * int(bits_per_element)  # bits a sender sends to each recipient
    dealer = int(dealer_elements) * int(dealer_bits)  # bits the dealer sends to each party
    bytes_pp = to * _message_bytes(message)
    cost = OpCost(calls=1, rounds=int(rounds), elements_opened=int(elements_opened),
                  bits_per_party=to * message, bits_total=by * to * message,
                  dealer_bits_per_party=dealer, n_parties=n,
                  bytes_per_party=bytes_pp, bytes_total=by * bytes_pp,
                  dealer_bytes_per_party=_message_bytes(dealer)).scaled(k)
    for t in list(_TALLIES.active):
        t.add(name, cost)
    _TALLIES.refresh()  # a jitted function that recorded must be re-traced if it is called again


@contextlib.contextmanager
def repeat(k: int):
    """Count every record made inside as ``k`` executions (a loop body traced once, run k times).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> def body(c, _):
        ...     record("step", n_parties=2, rounds=1, elements_opened=1)
        ...     return c, None
        >>> def loop(c):
        ...     with repeat(10):
        ...         return jax.lax.scan(body, c, length=10)[0]
        >>> tally(loop, jnp.zeros(())).ops["step"].rounds
        10
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ProtocolError(f"repeat(k) needs a non-negative Python int (a static trip count), got {k!r}. "
                            "Pass the loop's length as a Python int, e.g. repeat(n_steps).")
    _REPEAT.append(_REPEAT[-1] * int(k))
    try:
        yield
    finally:
        _REPEAT.pop()


def collecting_now() -> bool:
    """Whether costs are being collected (code that skips a protocol can then trace it for its cost)."""
    return bool(_TALLIES)


def collecting():
    """Collect records made while the block runs (or traces) into a fresh :class:`Tally`.

    Inside the block every ``jax.jit`` trace cache misses (see "Caching" in the module docstring).
    Prefer :func:`tally` / :func:`cost`, which only trace: *running* a jitted function inside this
    block re-traces and recompiles it.
    """
    return _TALLIES.collecting(Tally())


def scan(f: Callable, init, xs=None, length: int | None = None, **kwargs):
    """``jax.lax.scan`` whose body's records count once per step (``length`` times).

    Same signature and result as :func:`jax.lax.scan`. If JAX traces the body more than once (it does
    when a weakly-typed carry is promoted), only the last trace -- the one that runs -- is counted.
    Do not also wrap it in :func:`repeat` for the same loop.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> def body(c, _):
        ...     record("step", n_parties=2, rounds=1, elements_opened=1)
        ...     return c, None
        >>> tally(lambda c: scan(body, c, length=7)[0], jnp.zeros(())).ops["step"].rounds
        7
    """
    f, finish = diagnostics.scan_body(f)  # carries jaxmpc.trace.diagnostics out of the loop (no-op when off)
    if not _TALLIES:
        return finish(jax.lax.scan(f, init, xs, length, **kwargs))
    if length is None:
        leaves = jax.tree_util.tree_leaves(xs)
        if not leaves:
            raise ProtocolError(f"accounting.scan: the trip count comes from xs or length=, got xs={xs!r} "
                                "and length=None: pass length=n (as for jax.lax.scan).")
        length = int(np.shape(leaves[0])[0])
    traces: list[Tally] = []

    def body(carry, x):
        with _TALLIES.isolated(Tally()) as sub:  # the body's records go only to its own tally
            traces.append(sub)
            return f(carry, x)

    out = jax.lax.scan(body, init, xs, length, **kwargs)
    if traces:
        for t in _TALLIES.active:
            t.merge(traces[-1], int(length))
        _TALLIES.refresh()
    return finish(out)


def _is_dynamic(leaf) -> bool:
    """Array leaves are traced; everything else (Python numbers, strings, callables) stays static."""
    return isinstance(leaf, (jax.Array, np.ndarray, np.generic, jax.ShapeDtypeStruct))


def tally(fn: Callable, *args, **kwargs) -> Tally:
    """Trace ``fn(*args, **kwargs)`` abstractly (nothing runs or compiles) and return its records.

    Array leaves of ``args`` / ``kwargs`` (JAX or NumPy arrays, :class:`jax.ShapeDtypeStruct`, the
    shares inside :class:`jaxmpc.Shared`) are traced; every other leaf (Python ints such as a step
    count, strings, model objects, optimizers) is passed through unchanged, as a static argument.
    """
    if isinstance(fn, (jax.stages.Compiled, jax.stages.Lowered)):
        raise InputTypeError(
            "cost/tally: got an ahead-of-time compiled or lowered function, whose Python code cannot "
            "be traced again, so its communication cannot be counted. Pass the original function "
            "(or its jax.jit wrapper) instead."
        )
    if not callable(fn):
        raise InputTypeError(f"cost/tally: fn must be callable, got {type(fn).__name__}. Pass the "
                             "function first, then its arguments: jaxmpc.cost(fn, *args, **kwargs).")
    leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
    dyn = [i for i, leaf in enumerate(leaves) if _is_dynamic(leaf)]

    def traced(*dyn_leaves):
        full = list(leaves)
        for i, v in zip(dyn, dyn_leaves):
            full[i] = v
        a, kw = jax.tree_util.tree_unflatten(treedef, full)
        out = fn(*a, **kw)
        # keep only array leaves of the output (eval_shape rejects Python objects)
        return [leaf for leaf in jax.tree_util.tree_leaves(out) if isinstance(leaf, jax.Array)]

    with collecting() as t:
        jax.eval_shape(traced, *[leaves[i] for i in dyn])
    return t


# ---- network model ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class NetworkModel:
    r"""A latency-bandwidth network model: each round costs one latency, each byte 1/bandwidth.

    :math:`T = \text{rounds} \cdot \text{latency} + \text{bytes\_per\_party} / \text{bandwidth}`.
    Every party has its own link (parties send in parallel), and a round is one one-way message
    delay (everyone sends, then everyone has received). This is an estimate, not a measurement:
    it ignores computation, message framing and TCP effects.

    Args:
        latency_s: one-way delay of one round, in seconds (half a ping RTT).
        bandwidth_bytes_per_s: each party's outgoing bandwidth, in bytes per second.
        name: a label for printed output.
    """

    latency_s: float
    bandwidth_bytes_per_s: float
    name: str = "custom"

    def __post_init__(self):
        for field, v, positive in (("latency_s", self.latency_s, False),
                                   ("bandwidth_bytes_per_s", self.bandwidth_bytes_per_s, True)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or \
                    not math.isfinite(v) or v < 0 or (positive and v == 0):
                raise ProtocolError(
                    f"NetworkModel({field}=...) must be a finite {'positive' if positive else 'non-negative'}"
                    f" number, got {v!r}. Example: NetworkModel(latency_s=1e-4, "
                    f"bandwidth_bytes_per_s=10e9 / 8) for 0.1 ms and 10 Gbit/s."
                )

    def time(self, rounds: int, bytes_per_party: float) -> float:
        """Estimated seconds for ``rounds`` rounds and ``bytes_per_party`` bytes sent per party."""
        return rounds * self.latency_s + bytes_per_party / self.bandwidth_bytes_per_s

    def describe(self) -> str:
        return (f"{self.name}: {_fmt_seconds(self.latency_s)}/round, "
                f"{_fmt_bits_per_s(8 * self.bandwidth_bytes_per_s)}")


# Presets. Round numbers typical of the MPC-for-ML literature's evaluation settings (datacenter LAN of
# ~10 Gbit/s and ~0.1-0.3 ms ping; cross-region WAN of ~100-400 Mbit/s and 40-80 ms ping). They are
# chosen, not copied from one paper: state your own when a number matters.
LAN = NetworkModel(latency_s=0.1e-3, bandwidth_bytes_per_s=10e9 / 8, name="LAN")  # 0.2 ms RTT, 10 Gbit/s
WAN = NetworkModel(latency_s=40e-3, bandwidth_bytes_per_s=100e6 / 8, name="WAN")  # 80 ms RTT, 100 Mbit/s
PRESETS = (LAN, WAN)


# ---- the report -----------------------------------------------------------------------------------
@dataclasses.dataclass
class CostReport:
    """Rounds and bytes of one simulated run of a function, per operation and in total.

    Attributes:
        n_parties: parties (the largest count seen), or 0 if nothing was recorded.
        ops: operation name -> :class:`OpCost` (calls, rounds, elements opened, bytes, dealer bytes).
    """

    n_parties: int
    ops: dict[str, OpCost]

    @classmethod
    def from_tally(cls, t: Tally) -> "CostReport":
        return cls(n_parties=t.n_parties or 0, ops={k: dataclasses.replace(v) for k, v in t.ops.items()})

    @property
    def total(self) -> OpCost:
        out = OpCost()
        for c in self.ops.values():
            out.add(c)
        return out

    @property
    def calls(self) -> int:
        return self.total.calls

    @property
    def rounds(self) -> int:
        """Sequential rounds (sum over operations: an upper bound, nothing is overlapped)."""
        return self.total.rounds

    @property
    def elements_opened(self) -> int:
        return self.total.elements_opened

    @property
    def bytes_per_party(self) -> int:
        """Bytes the busiest party sends (all send the same with broadcast openings)."""
        return self.total.bytes_per_party

    @property
    def bytes_total(self) -> int:
        """Bytes sent by all parties together."""
        return self.total.bytes_total

    @property
    def dealer_bytes_per_party(self) -> int:
        """Bytes of dealer material each party receives (offline; not in the online estimate)."""
        return self.total.dealer_bytes_per_party

    def estimate(self, model: NetworkModel, *, include_dealer: bool = False) -> float:
        r"""Estimated communication time in seconds under ``model`` (an estimate, not a measurement).

        :math:`T = \text{rounds} \cdot \text{latency} + \text{bytes\_per\_party} / \text{bandwidth}`;
        with ``include_dealer`` the dealer's bytes per party are added to the bytes (over the same
        link, no extra rounds: the material can be sent ahead of time).
        """
        if not isinstance(model, NetworkModel):
            raise InputTypeError(f"estimate(model): model must be a NetworkModel, got {type(model).__name__}:"
                                 " pass jaxmpc.LAN, jaxmpc.WAN or "
                                 "NetworkModel(latency_s, bandwidth_bytes_per_s).")
        extra = self.dealer_bytes_per_party if include_dealer else 0
        return model.time(self.rounds, self.bytes_per_party + extra)

    def to_dict(self, models=PRESETS) -> dict[str, Any]:
        """A JSON-ready dict: totals, per-operation costs, and time estimates under ``models``."""
        t = self.total
        return {
            "n_parties": self.n_parties,
            **t.to_dict(),
            "ops": {name: c.to_dict() for name, c in self.ops.items()},
            "estimated_seconds": {
                m.name: {"online": self.estimate(m), "with_dealer": self.estimate(m, include_dealer=True),
                         "latency_s": m.latency_s, "bandwidth_bytes_per_s": m.bandwidth_bytes_per_s}
                for m in models
            },
            "estimate_formula": "rounds * latency_s + bytes_per_party / bandwidth_bytes_per_s",
        }

    def table(self, models=PRESETS) -> str:
        """An aligned text table of the costs, with time estimates under ``models``."""
        head = ("operation", "calls", "rounds", "opened", "bytes/party", "dealer B/party")
        rows = [(name, c.calls, c.rounds, c.elements_opened, c.bytes_per_party, c.dealer_bytes_per_party)
                for name, c in self.ops.items()]
        t = self.total
        total = ("total", t.calls, t.rounds, t.elements_opened, t.bytes_per_party, t.dealer_bytes_per_party)
        out = [f"cost of one run, {self.n_parties} parties (traced, per vmap element)"]
        out += collector.table(head, [tuple(_fmt_cell(v) for v in r) for r in rows],
                               tuple(_fmt_cell(v) for v in total), empty="(no communication recorded)")
        out.append(f"bytes/party {_fmt_bytes(t.bytes_per_party)}, all parties {_fmt_bytes(t.bytes_total)}, "
                   f"dealer/party {_fmt_bytes(t.dealer_bytes_per_party)}")
        if models:
            out.append("ESTIMATED online time = rounds x latency + bytes/party / bandwidth "
                       "(a network model, not a measurement):")
            for m in models:
                out.append(f"  {m.describe():<34} ~ {_fmt_seconds(self.estimate(m))}"
                           f"  (incl. dealer bytes ~ {_fmt_seconds(self.estimate(m, include_dealer=True))})")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def cost(fn: Callable, *args, **kwargs) -> CostReport:
    """Rounds and bytes of one run of ``fn(*args, **kwargs)``, traced at its real code path.

    Nothing runs or compiles: ``fn`` is traced with :func:`jax.eval_shape`, so inputs may be
    :class:`jax.ShapeDtypeStruct` (e.g. ``Shared(ShapeDtypeStruct((n, *shape), jnp.uint64), fxp)``).
    Works on ``jax.jit``-ed functions, also ones already called (their traces are redone, see
    "Caching" in :mod:`jaxmpc.trace.accounting`). Costs are per run: under ``jax.vmap`` they are those of one
    vmapped element. Array leaves of the arguments are traced; other leaves (Python ints, strings,
    callables, model objects) are static. Loop bodies count once unless the loop uses :func:`repeat`
    or :func:`scan` (see "Loops").

    Returns:
        :class:`CostReport`; ``print(report)`` shows a table with LAN/WAN time estimates.

    Example:
        >>> import jax, jax.numpy as jnp, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> fxp = jaxmpc.FixedPoint(10, 3)
        >>> x = jaxmpc.Shared(jax.ShapeDtypeStruct((2, 4, 3), jnp.uint64), fxp)
        >>> w = jaxmpc.Shared(jax.ShapeDtypeStruct((2, 3, 5), jnp.uint64), fxp)
        >>> r = jaxmpc.cost(jaxmpc.matmul, jax.random.key(0), x, w)
        >>> r.rounds, r.bytes_per_party, r.dealer_bytes_per_party
        (2, 376, 856)
    """
    return CostReport.from_tally(tally(fn, *args, **kwargs))


# ---- formatting -----------------------------------------------------------------------------------
def _fmt_cell(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.3f}"
    return f"{int(v):,}"


def _fmt_bytes(b) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= size:
            return f"{b / size:.3g} {unit}"
    return f"{b:g} B"


def _fmt_bits_per_s(bps: float) -> str:
    for unit, size in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= size:
            return f"{bps / size:g} {unit}"
    return f"{bps:g} bit/s"


def _fmt_seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} us"
