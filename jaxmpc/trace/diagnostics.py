r"""Diagnostics a real deployment cannot have: wrap-around, truncation failures, headroom and inputs
out of the approximations' domains, per call.

One process holds every party's shares, so the simulator can open what no party ever sees: the exact
value behind a sharing. In an opt-in collection (:func:`run` or :func:`collecting`) every protocol
call that has a hook reports, per element, whether its value left the ring, whether its truncation
failed, and how much of the ring it used. The results are JAX arrays (a :class:`Report` pytree), so
a diagnosed function works under ``jax.jit`` and ``jax.vmap`` and in sweeps. Outside a collection
every hook returns at once: no operation is traced, jaxprs are unchanged, it costs nothing.

Definitions. :math:`\mathrm{open}(x) = \mathrm{signed}(\sum_i x_i \bmod 2^{64}) \in [-2^{63}, 2^{63})`
is the value behind shares :math:`x_i` (in ring units: a fixed-point value times its scale).

Products (Beaver ``mul`` / ``matmul`` / ``square_sum``, and local products by a public value before
their truncation), from operands :math:`X = \mathrm{open}(x)`, :math:`Y = \mathrm{open}(y)` (or
the public encoded value) and the ring result :math:`Z = \mathrm{open}(z)`:

* :math:`P = X \circ Y` is the exact integer product, computed in float64 by the float twin of the
  bilinear map (relative error below :math:`k\,2^{-52}` for :math:`k` summed terms);
* **wrap** :math:`\iff |P - Z| > 2^{62}`. The ring computes :math:`Z \equiv P \pmod{2^{64}}`, so
  :math:`P - Z` is a multiple of :math:`2^{64}`: zero exactly when :math:`P \in [-2^{63}, 2^{63})`,
  else at least :math:`2^{64}`; the float error is below :math:`k\,2^{-53} \sum |X_i Y_i|`, so the
  test is exact while :math:`k \sum |X_i Y_i| < 2^{115}`. A wrapped product is garbage, however
  it is truncated;
* **out of range** :math:`\iff |P| \ge 2^{62}`: beyond the range where the truncation that follows
  is guaranteed (:func:`jaxmpc.truncate_shares`);
* magnitude :math:`|P|` (above :math:`2^{63}` when it wrapped).

Truncation by a public :math:`d` (any method), from :math:`X = \mathrm{open}(x)` and the result
:math:`Y = \mathrm{open}(y)`, with :math:`q = \lfloor X/d \rfloor`:

* **failure** :math:`\iff Y - q \notin \{-1, 0, 1, 2\}`. The protocols guarantee
  :math:`Y - q \in \{0, 1\}` (local, and dealer: stochastic rounding); a failure is an error
  beyond that, with one unit of slack on each side. Local (SecureML) truncation fails when the two
  signed shares overflow, with probability :math:`(|X| + 1)/2^{64}` per element, and is then off by
  :math:`\approx 2^{64}/d` (``experiments/reliability.py`` measures it);
* **out of range** :math:`\iff |X| \ge 2^{62} - d` (outside the dealer protocol's guarantee);
* **underflow** :math:`\iff 0 < |X| < d`: the exact quotient is below one unit, so the result is
  0 or :math:`\pm 1`, rounding noise only: the value's information is lost;
* magnitude :math:`|X|`.

Sharing (``share``), of a real :math:`x` at scale :math:`s`, :math:`P = x s`:
**wrap** :math:`\iff |P| \ge 2^{63}` (no int64), **out of range** :math:`\iff |x| s^2 \ge 2^{62}`
(no room for one product; what :func:`jaxmpc.share` checks on concrete inputs but cannot on traced
ones), **underflow** :math:`\iff x \ne 0` and :math:`\mathrm{round}(P) = 0`; magnitude :math:`|P|`.

Domains (one entry per approximation of :mod:`jaxmpc.ops.approx`, named after it: ``"exp"``,
``"rsqrt"``, ...): each call of an approximation reports its input :math:`X = \mathrm{open}(x)` against
the documented domain :math:`[a, b]` of that call (:data:`jaxmpc.ops.approx.DOMAINS`, bounds for its
iteration counts): **out of domain** :math:`\iff X < a s - 1/2` or :math:`X > b s + 1/2` at scale
:math:`s` (the encoding of any value of the domain is in it). Outside its domain an approximation
returns garbage however exact the protocol is, so such an element counts against :attr:`Report.ok`
like a wrap. :func:`jaxmpc.ops.approx.softmax` checks :math:`x - \max x` (one element per entry),
then its row sums against the domain of its reciprocal (one per row). Each call of a public
approximation is checked, whoever makes it (the losses of :mod:`jaxmpc.nn.losses` call several);
the ones an approximation computes inside (the :func:`jaxmpc.ops.approx.exp` of
:func:`jaxmpc.ops.approx.rsqrt`) are not: its own domain keeps their inputs in theirs.

The bounds above are written for :math:`\mathbb{Z}_{2^{64}}`; on :math:`\mathbb{Z}_{2^{\ell}}` every
:math:`2^{62}` is :math:`2^{\ell - 2}` and every :math:`2^{63}`, :math:`2^{64}` is :math:`2^{\ell-1}`,
:math:`2^{\ell}` (the hooks take the ring from the shares; the report's ``headroom_used`` is a fraction
of :math:`2^{62}` whatever the ring).

Precisions (``"precision range"``): a ``FixedPoint`` made from a traced precision (under ``jit`` /
``vmap``, so it could not raise) counts one element, a **failure** :math:`\iff` the precision is
outside ``0..max_precision(base)``; such a run decodes to NaN (:mod:`jaxmpc.core.fixedpoint`). Linear
operations on operands whose traced precisions differ count a failure under ``"precision match"``.

Each call name (``"matmul"``, ``"matmul/truncate/dealer"``, ``"sgd/truncate/dealer"``, ``"share"``;
a truncation is named after the protocol it finishes, see :func:`label`) gets one :class:`Stats`:
counts of calls, elements, wraps, failures, out-of-range elements, underflows and inputs out of
an approximation's domain, the largest magnitude, and the first loop step with a wrap, a failure or
an input out of domain. :func:`jaxmpc.trace.accounting.scan` (the loop of
:func:`jaxmpc.nn.training.fit`, the comparison and the approximations) carries the per-step statistics
out of the loop and aggregates them: sums of counts, the max of magnitudes, the first bad step.

Limits. Observations must happen at the trace level of the collection, or inside
:func:`jaxmpc.trace.accounting.scan` loops. A protocol call inside a nested ``jax.jit``, ``jax.vmap``,
``lax.cond`` or plain ``lax.scan`` in the diagnosed function raises :class:`jaxmpc.ProtocolError`
(put ``jit`` and ``vmap`` outside: ``jax.jit(jax.vmap(diagnostics.run(f)))``). In a collection under
a trace (the usual ``jax.jit(diagnostics.run(f))``) every nested ``jax.jit`` trace cache misses (as
in :func:`jaxmpc.trace.accounting.collecting`), so a cached inner ``jit`` raises too instead of silently
hiding its calls. A diagnosed function run eagerly keeps JAX's caches (the cache-busting token
would recompile every primitive), so there an inner ``jit`` traced earlier goes unseen.

Cost when on: one party sum per checked array and a float64 evaluation of each product (one float
GEMM per ``matmul``), plus a few scalars per call and loop step.

Example:
    >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
    >>> from jaxmpc import diagnostics
    >>> fxp = jaxmpc.FixedPoint(10, 4)
    >>> def f(key, v):
    ...     k0, k1 = jax.random.split(key)
    ...     x = jaxmpc.share(k0, v, fxp)
    ...     return jaxmpc.reveal(jaxmpc.mul(k1, x, x))
    >>> out, report = jax.jit(diagnostics.run(f))(jax.random.key(0), jax.numpy.array([1.5, 4e5]))
    >>> int(report["mul"].wraps), bool(report.ok)      # (4e5 * 1e4)^2 > 2^63 wraps
    (1, False)
"""
from __future__ import annotations

import contextlib
import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import core as _core  # the current trace, to refuse observations from nested traces

from . import collector
from ..core import fixedpoint, ring
from ..errors import InputTypeError, ProtocolError, UnknownNameError

HEADROOM_BITS = 62  # |x| < 2^62 - d: the range of dealer truncation (fixedpoint.HEADROOM_BITS)
_I64 = jnp.int64
_F64 = jnp.float64


class Stats(NamedTuple):
    """Diagnostics of one call name (arrays; batched under ``vmap``). Definitions in the module doc.

    Attributes:
        calls: protocol calls observed (every loop step counts).
        elements: elements checked.
        wraps: elements whose exact value left the ring's signed range :math:`[-2^{63}, 2^{63})`.
        failures: truncation results off by more than the protocol's error bound (for
            ``"precision range"`` / ``"precision match"``: a bad or mismatched precision).
        out_of_range: elements beyond the headroom :math:`2^{62}` (truncation: :math:`2^{62} - d`).
        underflows: truncations whose exact quotient is below one unit (sharing: encoded to 0).
        out_of_domain: inputs of an approximation outside its documented domain (its entry only).
        max_abs: largest exact magnitude, in ring units (float64).
        first_bad: first step of the outermost :func:`jaxmpc.trace.accounting.scan` loop with a wrap,
            failure or input out of domain (0 outside loops), or -1 if none.
    """

    calls: jax.Array
    elements: jax.Array
    wraps: jax.Array
    failures: jax.Array
    out_of_range: jax.Array
    underflows: jax.Array
    out_of_domain: jax.Array
    max_abs: jax.Array
    first_bad: jax.Array


_COUNTS = ("calls", "elements", "wraps", "failures", "out_of_range", "underflows", "out_of_domain")


def _stats(size: int, *, wraps=None, failures=None, out_of_range=None, underflows=None,
           out_of_domain=None, max_abs=None) -> Stats:
    zero = jnp.zeros((), _I64)

    def count(mask):
        return zero if mask is None else jnp.sum(mask, dtype=_I64)

    w, f, d = count(wraps), count(failures), count(out_of_domain)
    return Stats(calls=jnp.ones((), _I64), elements=jnp.asarray(size, _I64), wraps=w, failures=f,
                 out_of_range=count(out_of_range), underflows=count(underflows), out_of_domain=d,
                 max_abs=jnp.max(max_abs, initial=0.0) if max_abs is not None else jnp.zeros((), _F64),
                 first_bad=jnp.where(w + f + d > 0, 0, -1).astype(_I64))


def _first(a: jax.Array, b: jax.Array) -> jax.Array:
    """The earlier of two first-bad steps (-1 means none)."""
    return jnp.where(a < 0, b, jnp.where(b < 0, a, jnp.minimum(a, b)))


def _merge(a: Stats, b: Stats) -> Stats:
    return Stats(*[getattr(a, f) + getattr(b, f) for f in _COUNTS],
                 max_abs=jnp.maximum(a.max_abs, b.max_abs), first_bad=_first(a.first_bad, b.first_bad))


def _over_steps(s: Stats, axis: int = 0) -> Stats:
    """Aggregate per-step statistics of a loop along its step axis (sums, max, first bad step)."""
    bad = s.first_bad >= 0
    return Stats(*[jnp.sum(getattr(s, f), axis=axis, dtype=_I64) for f in _COUNTS],
                 max_abs=jnp.max(s.max_abs, axis=axis, initial=0.0),
                 first_bad=jnp.where(jnp.any(bad, axis=axis), jnp.argmax(bad, axis=axis), -1).astype(_I64))


def _step_indices(s: Stats) -> Stats:
    """Per-step statistics ``[steps]`` whose ``first_bad`` is the step's own index where bad."""
    steps = jnp.arange(s.first_bad.shape[0], dtype=_I64)
    return s._replace(first_bad=jnp.where(s.first_bad >= 0, steps, -1))


# ---- the report -----------------------------------------------------------------------------------
@jax.tree_util.register_pytree_node_class
class Report:
    """Diagnostics of one run: call name -> :class:`Stats` (in order of first occurrence).

    A pytree of arrays: return it from ``jit``, batch it with ``vmap``. Under ``vmap`` every field
    has the batch axes in front; :meth:`summary`, :meth:`total`, :meth:`to_dict` and :attr:`ok`
    aggregate over them (sums, max, earliest bad step). With ``run(fn, per_step=True)`` the calls
    made in the outermost loop (names in :attr:`stepped`) keep a last axis of loop steps, whose
    ``first_bad`` is the step's index where bad; :meth:`window` aggregates a range of steps.
    """

    def __init__(self, calls: dict[str, Stats], stepped=()):
        self.calls = dict(calls)
        self.stepped = tuple(stepped)

    def tree_flatten(self):
        return list(self.calls.values()), (tuple(self.calls), self.stepped)

    @classmethod
    def tree_unflatten(cls, aux, children):
        names, stepped = aux
        return cls(dict(zip(names, children)), stepped)

    def _collapsed(self) -> dict[str, Stats]:
        """Every call's stats with any step axis aggregated away."""
        return {n: (_over_steps(s, -1) if n in self.stepped else s) for n, s in self.calls.items()}

    def window(self, start: int, stop: int) -> "Report":
        """The calls of the stepped loop, aggregated over its steps ``start:stop`` (first_bad stays
        an absolute step index)."""
        if not self.stepped:
            raise ProtocolError("Report.window needs a report with a step axis, got one without: collect "
                                "it with diagnostics.run(fn, per_step=True).")
        out = {}
        for n in self.stepped:
            s = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[..., start:stop], self.calls[n])
            bad = s.first_bad >= 0
            out[n] = _over_steps(s, -1)._replace(first_bad=jnp.where(
                jnp.any(bad, axis=-1), jnp.min(jnp.where(bad, s.first_bad, np.iinfo(np.int64).max), axis=-1),
                -1).astype(_I64))
        return Report(out)

    def __getitem__(self, name: str) -> Stats:
        if name not in self.calls:
            raise UnknownNameError(f"no diagnostics for {name!r}; expected one of the observed names "
                                   f"{list(self.calls)} (report.names()).")
        return self.calls[name]

    def __contains__(self, name: str) -> bool:
        return name in self.calls

    def names(self) -> list[str]:
        return list(self.calls)

    @staticmethod
    def _flat(s: Stats) -> dict[str, Any]:
        """One call's stats aggregated over any batch axes, as Python numbers."""
        out = {f: int(np.sum(np.asarray(getattr(s, f)))) for f in _COUNTS}
        out["max_abs"] = float(np.max(np.asarray(s.max_abs), initial=0.0))
        fb = np.asarray(s.first_bad)
        out["first_bad"] = int(fb[fb >= 0].min()) if (fb >= 0).any() else -1
        return out

    def runs(self) -> int:
        """Number of runs batched in this report (1 unless it came out of ``vmap``)."""
        for n, s in self.calls.items():
            shape = np.shape(s.calls)
            return int(np.prod(shape[:-1] if n in self.stepped else shape, dtype=np.int64))
        return 1

    def total(self) -> dict[str, Any]:
        """All calls together: counts summed, largest magnitude, earliest bad step."""
        rows = [self._flat(s) for s in self._collapsed().values()]
        out = {f: sum(r[f] for r in rows) for f in _COUNTS}
        out["max_abs"] = max([r["max_abs"] for r in rows], default=0.0)
        bad = [r["first_bad"] for r in rows if r["first_bad"] >= 0]
        out["first_bad"] = min(bad, default=-1)
        return out

    @property
    def ok(self):
        """True where nothing wrapped, nothing failed (truncations, precisions) and no approximation
        had an input outside its domain (an array: one per batched run)."""
        bad = sum((s.wraps + s.failures + s.out_of_domain for s in self._collapsed().values()),
                  start=jnp.zeros((), _I64))
        return bad == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: per call, counts (summed over batched runs), ``max_abs``, ``max_bits``
        (:math:`\\log_2` of it), ``headroom_used`` (it over :math:`2^{62}`), ``first_bad``."""
        def row(r):
            return {**r, "max_bits": _bits(r["max_abs"]), "headroom_used": r["max_abs"] / 2.0**HEADROOM_BITS}
        return {"runs": self.runs(), "calls": {n: row(self._flat(s)) for n, s in self._collapsed().items()},
                "total": row(self.total())}

    def summary(self) -> str:
        """A text table: per call, elements, wraps, failures, out-of-range elements,
        underflows (and their share), inputs out of domain, the largest magnitude in bits and as a
        fraction of 2^62."""
        head = ("call", "calls", "elements", "wraps", "failures", "out of range", "underflows",
                "out of domain", "max bits", "of 2^62", "first bad")
        rows = []
        for name, r in [(n, self._flat(s)) for n, s in self._collapsed().items()] + [("total", self.total())]:
            under = f"{r['underflows']:,}" + (f" ({r['underflows'] / r['elements']:.0%})"
                                              if r["elements"] and r["underflows"] else "")
            rows.append((name, f"{r['calls']:,}", f"{r['elements']:,}", f"{r['wraps']:,}",
                         f"{r['failures']:,}", f"{r['out_of_range']:,}", under, f"{r['out_of_domain']:,}",
                         f"{_bits(r['max_abs']):.1f}" if r["max_abs"] > 0 else "-",
                         f"{r['max_abs'] / 2.0**HEADROOM_BITS:.2g}",
                         "-" if r["first_bad"] < 0 else str(r["first_bad"])))
        runs = self.runs()
        t = self.total()
        verdict = ("OK: no wrap-around, no failure, no input out of domain"
                   if t["wraps"] + t["failures"] + t["out_of_domain"] == 0
                   else "FAILED: see wraps / failures / out of domain")
        out = [f"diagnostics ({runs} run{'s' if runs != 1 else ''}; counts summed over runs and loop "
               f"steps; simulator-only information)"]
        out += collector.table(head, rows[:-1], rows[-1], empty="(no protocol call observed)")
        out.append(verdict)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"Report({self.names()}" + (f", stepped={list(self.stepped)})" if self.stepped else ")")


def _bits(v: float) -> float:
    return math.log2(v) if v > 0 else float("-inf")


# ---- collection -----------------------------------------------------------------------------------
class _Collector:
    """Observations at one trace level (the collection's, or one loop body's)."""

    def __init__(self, per_step: bool = False):
        self.trace = _core.trace_ctx.trace
        self.calls: dict[str, Stats] = {}
        self.per_step = per_step
        self.stepped: list[str] = []

    def _check_trace(self, name: str) -> None:
        if _core.trace_ctx.trace is not self.trace:
            raise ProtocolError(
                f"diagnostics: the protocol call {name!r} runs inside a nested transformation "
                "(jax.jit, jax.vmap, lax.cond or a plain lax.scan inside the diagnosed function), "
                "whose values cannot leave it. Put jit and vmap outside the diagnosed function "
                "(jax.jit(jax.vmap(diagnostics.run(f)))) and write loops with "
                "jaxmpc.trace.accounting.scan."
            )

    def add(self, name: str, s: Stats) -> None:
        self._check_trace(name)
        if name in self.stepped:
            raise ProtocolError(f"diagnostics(per_step=True): {name!r} is observed both in the "
                                "outermost loop and outside it; use per_step=False.")
        self.calls[name] = _merge(self.calls[name], s) if name in self.calls else s

    def add_steps(self, name: str, s: Stats) -> None:
        """Per-step statistics ``[steps]`` of the outermost loop, kept per step."""
        self._check_trace(name)
        if name in self.calls:
            raise ProtocolError(f"diagnostics(per_step=True): {name!r} is observed in two loops, or "
                                "in a loop and outside it; use per_step=False.")
        self.calls[name] = _step_indices(s)
        self.stepped.append(name)


_COLLECTORS = collector.Channel("diagnostics")  # one _Collector per trace level, innermost last
_LABELS: list[str] = []


def active() -> bool:
    """Whether diagnostics are being collected."""
    return bool(_COLLECTORS)


@contextlib.contextmanager
def collecting(*, per_step: bool = False):
    """Collect the diagnostics of protocol calls run (or traced) in the block; yields a function
    returning the :class:`Report` so far. Prefer :func:`run`; ``per_step`` as there.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> x = jaxmpc.share(jax.random.key(0), [2.0, -3.0], jaxmpc.FixedPoint(10, 3))
        >>> with collecting() as report:
        ...     y = jaxmpc.div_public(jax.random.key(1), x, 3)
        >>> int(report()["div_public/truncate/dealer"].elements)
        2
    """
    c = _Collector(per_step)
    # under a trace, make nested jit caches miss (see "Limits"); not when running eagerly, where the
    # token would recompile every primitive
    eager = isinstance(c.trace, _core.EvalTrace)
    with _COLLECTORS.collecting(c, fresh_caches=not eager):
        yield lambda: Report(c.calls, c.stepped)


def run(fn: Callable, *, per_step: bool = False) -> Callable:
    """``fn`` with diagnostics: ``run(fn)(*args, **kwargs) -> (fn(*args, **kwargs), Report)``.

    Jit and vmap the result, not ``fn``: ``jax.jit(jax.vmap(diagnostics.run(fn)))``. With
    ``per_step=True`` the calls inside the outermost :func:`jaxmpc.trace.accounting.scan` loop keep one
    entry per step (a last axis), e.g. to see when in training something starts to go wrong.

    Example (two runs in one ``vmap``; 0.004 is below one unit at precision 2):
        >>> import jax, jax.numpy as jnp, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> def f(key, precision):
        ...     k0, k1 = jax.random.split(key)
        ...     x = jaxmpc.share(k0, jnp.array([0.5, 0.004]), jaxmpc.FixedPoint(10, precision))
        ...     return jaxmpc.reveal(jaxmpc.mul_public(k1, x, 0.5))
        >>> out, report = jax.jit(jax.vmap(run(f)))(jax.random.split(jax.random.key(0), 2), jnp.array([2, 4]))
        >>> report["share"].underflows.tolist(), report["mul_public/truncate/dealer"].elements.tolist()
        ([1, 0], [2, 2])
    """
    if not callable(fn):
        raise InputTypeError(f"diagnostics.run(fn): fn must be callable, got {type(fn).__name__}; "
                             "wrap the function itself: diagnostics.run(fn)(*args).")

    @functools.wraps(fn)
    def diagnosed(*args, **kwargs):
        with collecting(per_step=per_step) as report:
            out = fn(*args, **kwargs)
        return out, report()

    return diagnosed


def label(name: str):
    """Name the calls observed inside by a prefix (``label("sgd")`` turns a truncation's
    ``"truncate/dealer"`` into ``"sgd/truncate/dealer"``). A no-op context when not collecting."""
    if not _COLLECTORS:
        return contextlib.nullcontext()
    return _labelled(name)


@contextlib.contextmanager
def _labelled(name: str):
    _LABELS.append(name)
    try:
        yield
    finally:
        _LABELS.pop()


def _observe(name: str, s: Stats) -> None:
    _COLLECTORS.top.add("/".join(_LABELS + [name]), s)


def scan_body(f: Callable):
    """For :func:`jaxmpc.trace.accounting.scan`: ``(body, finish)`` that carry a loop's diagnostics out.

    ``body`` observes ``f``'s calls at the loop body's trace level and returns them with each step's
    output; ``finish`` turns the scan's result back into ``f``'s and adds the per-step statistics,
    aggregated over steps, to the enclosing collection. Without a collection: ``(f, identity)``.
    """
    if not _COLLECTORS:
        return f, lambda out: out

    def body(carry, x):
        with _COLLECTORS.collecting(_Collector(), fresh_caches=False) as c:  # the body's trace level
            carry, y = f(carry, x)
        return carry, (y, Report(c.calls))

    def finish(out):
        carry, (ys, steps) = out
        target = _COLLECTORS.top
        for name, s in steps.calls.items():
            if target.per_step:
                target.add_steps(name, s)
            else:
                target.add(name, _over_steps(s))
        return carry, ys

    return body, finish


# ---- hooks (called by the protocols) --------------------------------------------------------------
def _open(v: jax.Array, public: bool) -> jax.Array:
    """The signed value behind shares ``uint64[n, ...]`` (or a public ring array)."""
    return ring.to_signed(v if public else ring.party_sum(v))


_FLOAT_TWINS: dict[Callable, Callable] = {}


def register_float_twin(op: Callable, float_op: Callable) -> None:
    """Declare the float64 version of a ring bilinear map, used to compute exact products.

    ``jnp.multiply`` and any map written with ``jnp`` arithmetic work on floats as they are; a
    ring-only implementation (like :func:`jaxmpc.core.gemm.matmul`) needs its twin registered. A
    ``functools.partial(op, *args, **kw)`` of a registered ``op`` uses
    ``functools.partial(float_op, *args, **kw)``.

    Example:
        >>> import functools, jax.numpy as jnp
        >>> def ring_dot(a, b, *, axis):  # suppose it only worked on uint64
        ...     return jnp.sum(a * b, axis=axis)
        >>> register_float_twin(ring_dot, ring_dot)
        >>> _float_twin(functools.partial(ring_dot, axis=0))(jnp.ones(3), jnp.ones(3)).item()
        3.0
    """
    if not callable(op) or not callable(float_op):
        raise InputTypeError(f"register_float_twin(op, float_op): both must be callables, got "
                             f"{type(op).__name__} and {type(float_op).__name__}.")
    _FLOAT_TWINS[op] = float_op


def _float_twin(op: Callable) -> Callable:
    from ..core import gemm
    hp = functools.partial(jnp.matmul, precision=jax.lax.Precision.HIGHEST)
    for f in (gemm.matmul, gemm.matmul_small):
        _FLOAT_TWINS.setdefault(f, hp)
    if op in _FLOAT_TWINS:
        return _FLOAT_TWINS[op]
    if isinstance(op, functools.partial) and op.func in _FLOAT_TWINS:
        return functools.partial(_FLOAT_TWINS[op.func], *op.args, **op.keywords)
    return op


def observe_product(name: str, x: jax.Array, y: jax.Array, z: jax.Array, op: Callable, *,
                    y_public: bool = False) -> None:
    """Hook: the ring product ``z = op(x, y)`` before truncation (shares ``uint64[n, ...]``; ``y``
    may be a public ring array with ``y_public=True``). Nothing is traced unless collecting."""
    if not _COLLECTORS:
        return
    xf, yf = _open(x, False).astype(_F64), _open(y, y_public).astype(_F64)
    exact = _float_twin(op)(xf, yf)
    if not jnp.issubdtype(exact.dtype, jnp.floating):
        raise ProtocolError(
            f"diagnostics: the bilinear map of {name!r} does not compute on float64 arrays; "
            "declare its float twin with jaxmpc.diagnostics.register_float_twin(op, float_op)."
        )
    zf = _open(z, False).astype(_F64)
    mag = jnp.abs(exact)
    room = fixedpoint.headroom_bits(ring.bits_of(z))
    _observe(name, _stats(int(np.prod(zf.shape, dtype=np.int64)),
                          wraps=jnp.abs(exact - zf) > 2.0**room,
                          out_of_range=mag >= 2.0**room, max_abs=mag))


def observe_truncation(name: str, x: jax.Array, divisor, y: jax.Array) -> None:
    """Hook: shares ``y`` of about ``x / divisor`` from shares ``x`` (``uint64[n, ...]``)."""
    if not _COLLECTORS:
        return
    room = fixedpoint.headroom_bits(ring.bits_of(x))
    xv, yv = _open(x, False).astype(_I64), _open(y, False).astype(_I64)
    d = jnp.broadcast_to(ring.to_signed(jnp.asarray(divisor, x.dtype)).astype(_I64), xv.shape)
    off = yv - jnp.floor_divide(xv, d)
    limit = jnp.int64(1 << room) - d
    _observe(name, _stats(int(np.prod(xv.shape, dtype=np.int64)),
                          failures=(off < -1) | (off > 2),
                          out_of_range=(xv >= limit) | (xv <= -limit),
                          underflows=(xv != 0) & (xv > -d) & (xv < d),
                          max_abs=jnp.abs(xv.astype(_F64))))


def observe_domain(name: str, x: jax.Array, fxp, low: float, high: float) -> None:
    """Hook: shares ``x`` (``uint64[n, ...]``, encoded by ``fxp``, a ``FixedPoint``) are the input
    of the approximation ``name``, documented on ``[low, high]``; the elements outside it (by more
    than half a unit, see "Domains") count as ``out_of_domain``."""
    if not _COLLECTORS or fxp is None:
        return
    v = _open(x, False).astype(_F64)
    s = jnp.where(fxp.valid, fxp.scale, 1.0)  # an out-of-range precision counts under "precision range"
    _observe(name, _stats(int(np.prod(v.shape, dtype=np.int64)),
                          out_of_domain=(v < low * s - 0.5) | (v > high * s + 0.5)))


def observe_precisions(name: str, a, b) -> None:
    """Hook: two operands of a linear operation whose precisions are traced (so they could not be
    compared while tracing) must have the same precision; a mismatch counts as a failure (the
    result would be decoded at the wrong scale). Skipped inside nested transformations, where local
    operations are allowed to run."""
    if not _COLLECTORS or _core.trace_ctx.trace is not _COLLECTORS.top.trace:
        return
    _observe(name, _stats(1, failures=a.precision != b.precision))


def observe_precision_range(fxp) -> None:
    """Hook: ``fxp`` (a ``FixedPoint``) was just made from a traced precision, which could not be
    range-checked while tracing; one outside ``0..max_precision(base)`` counts as a failure under
    ``"precision range"`` (such a run decodes to NaN). Concrete precisions raise when the
    ``FixedPoint`` is made, so they are not observed; nor inside nested transformations."""
    if not _COLLECTORS or _core.trace_ctx.trace is not _COLLECTORS.top.trace or fxp.concrete_precision() is not None:
        return
    _observe("precision range", _stats(1, failures=~fxp.valid))


def observe_encoding(name: str, x, v: jax.Array, fxp) -> None:
    """Hook: the encoding ``v = encode(x)`` of a real array ``x`` by ``fxp`` (a ``FixedPoint``)."""
    if not _COLLECTORS or fxp is None:
        return
    xf = jnp.asarray(x, _F64)
    s = jnp.where(fxp.valid, fxp.scale, 1.0)  # an out-of-range precision counts under "precision range"
    mag = jnp.abs(xf * s)
    bits = ring.bits_of(v)
    _observe(name, _stats(int(np.prod(xf.shape, dtype=np.int64)),
                          wraps=mag >= 2.0**(bits - 1),
                          out_of_range=mag * s >= 2.0**fixedpoint.headroom_bits(bits),
                          underflows=(xf != 0) & (v == ring.word(0, v)),
                          max_abs=mag))


fixedpoint.on_traced_precision(observe_precision_range)
