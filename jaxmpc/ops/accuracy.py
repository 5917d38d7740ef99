r"""Accuracy of the approximations of :mod:`jaxmpc.ops.approx`: shared result and plaintext twin against
float64, on a dense grid of each documented domain.

For an approximation :math:`f` with domain :math:`[a, b]` (:func:`jaxmpc.ops.approx.domain`, for the
static arguments of the run), :func:`measure` shares every point of :func:`inputs` (a grid of the
domain, both edges included) at each precision with each of several keys, runs the approximation,
reveals it and compares with float64 (:data:`EXACT`) of the encoded inputs :math:`x` (the grid
point rounded to the precision, :func:`encoded`: what the parties hold; the rounding of an input is
the encoding's error, not the approximation's, and dominates near zero, e.g. a relative 1/32 for
:math:`1/x` at :math:`x = 2^{-12}` with 16 fractional bits):

.. math:: \mathrm{err} = \max \frac{|y - f(x)|}{\max(1, |f(x)|)}, \qquad
          \mathrm{abs} = \max |y - f(x)|

(absolute where :math:`|f| \le 1`, relative above: the metric of the bounds in
:data:`jaxmpc.ops.approx.DOMAINS`), the maxima over the grid and the keys; the same for the
plaintext twin (the approximation alone). All precisions and keys of one call are one jitted,
``vmap``-ped program, compiled once per function, party count, static arguments and grid (calls
with the same ones reuse it); :func:`measure_all` evaluates every function at its defaults in one
program (one compile).

:func:`page` renders ``docs/approx.md`` from these measurements at the defaults, and
:func:`problems` says whether a file on disk is that page (``experiments/approx.py --write`` /
``--check``; ``tests/test_approx.py`` checks it).

Example:
    >>> import jax; jax.config.update("jax_enable_x64", True)
    >>> from jaxmpc.ops import accuracy
    >>> (m,) = accuracy.measure("exp", points=9, keys=1)
    >>> m.low, m.high, m.err <= 0.05
    (-256.0, 4.0, True)
"""
from __future__ import annotations

import difflib
import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import approx
from ..core.fixedpoint import FixedPoint
from ..core.keys import key as make_key
from ..errors import InputTypeError, UnknownNameError
from ..protocols.shared import reveal, share

__all__ = ["EXACT", "NAMES", "ROWS", "Measurement", "encoded", "inputs", "measure", "measure_all", "page",
           "problems",
           "COMMAND", "PARTIES", "PRECISION", "POINTS", "KEYS"]

def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    d = x - x.max(-1, keepdims=True)
    return d - np.log(np.exp(d).sum(-1, keepdims=True))


_erf = np.vectorize(math.erf, otypes=[np.float64])


NAMES = tuple(approx.DOMAINS)
EXACT: dict[str, Callable] = {  # float64 references of the operands (numpy)
    "exp": np.exp,
    "reciprocal": lambda x: 1.0 / x,
    "divide": lambda x, y: x / y,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "rsqrt": lambda x: 1.0 / np.sqrt(x),
    "log": np.log,
    "softmax": _softmax,
    "sqrt": np.sqrt,
    "log_softmax": _log_softmax,
    "erf": _erf,
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "exp2": np.exp2,
    "log2": np.log2,
    "log1p": np.log1p,
    "cos": np.cos,
    "sin": np.sin,
}
ROWS = ("softmax", "log_softmax")  # measured on rows (their domain bounds x - max x)
COMMAND = ".venv/bin/python experiments/approx.py --write"
PARTIES = (2, 3)  # the page's party counts
PRECISION = 16  # the page's fractional bits (base 2)
POINTS = 257  # grid points per part of the grid (see inputs)
KEYS = 4  # keys per measurement
DENSE = 16.0  # the grid is dense within [-DENSE, DENSE], where the functions vary most
SOFTMAX_ROW = 8  # entries of a softmax row


class Measurement(NamedTuple):
    """Errors of one approximation at one precision (see the module notes)."""

    name: str
    n_parties: int
    precision: int
    static: dict  # the static arguments (iteration counts) used
    low: float  # the domain
    high: float
    size: int  # grid points (elements of the operand the domain bounds)
    err: float  # max |y - f| / max(1, |f|) of the shared result
    abs: float  # max |y - f| of the shared result
    worst: float  # the input (of the domain's operand) where err is reached
    twin_err: float  # the same two errors for the plaintext twin
    twin_abs: float
    inputs: tuple  # the operands (float64 arrays, see inputs)
    results: np.ndarray  # the revealed results, float64[keys, *shape]


def _check_name(name: str) -> None:
    if name not in approx.DOMAINS:
        raise UnknownNameError(f"accuracy: no approximation named {name!r}; expected one of {list(NAMES)}.")


def _grid(low: float, high: float, points: int) -> np.ndarray:
    """Linear over ``[low, high]``, geometric too where ``low > 0``, and linear over its part in
    ``[-DENSE, DENSE]``; sorted, both edges included."""
    parts = [np.linspace(low, high, points)]
    if low > 0:
        parts.append(np.geomspace(low, high, points))
    lo, hi = max(low, -DENSE), min(high, DENSE)
    if lo < hi and (lo, hi) != (low, high):
        parts.append(np.linspace(lo, hi, points))
    return np.unique(np.concatenate(parts))


def inputs(name: str, points: int = POINTS, **static) -> tuple:
    """The operands ``name`` is measured on, as float64 numpy arrays (positional arguments).

    The domain's operand is the grid of :func:`jaxmpc.ops.approx.domain` (for ``static``):
    ``points`` values linear over it, ``points`` geometric over it when it is positive, and
    ``points`` linear over its part in :math:`[-16, 16]`. Where the domain bounds an absolute value
    (``reciprocal``, ``divide``: operand ``|x|``, ``|y|``, with ``signed=True``) the operand runs over
    the grid and its negation. For ``divide``, ``x`` runs over :math:`[-8, 8]` in a fixed shuffled
    order beside the grid of ``y``; for ``softmax`` and ``log_softmax`` each grid value :math:`t` (a
    spread in :math:`[0, 2^{n_e}]`) is a row of 8 entries from 0 down to :math:`-t`.
    """
    _check_name(name)
    _count(points, "points", 2)
    low, high = approx.domain(name, **static)
    if name in ROWS:
        spreads = _grid(-high, -low, points)
        return (-spreads[:, None] * np.linspace(0.0, 1.0, SOFTMAX_ROW),)
    g = _grid(low, high, points)
    if _symmetric(name, static):
        g = np.concatenate([-g[::-1], g])
    if name == "divide":
        x = np.random.default_rng(0).permutation(np.linspace(-8.0, 8.0, g.size))
        return x, g
    return (g,)


def _symmetric(name: str, static: dict) -> bool:
    """Whether the domain of ``name`` (for ``static``) bounds an absolute value: the grid is mirrored."""
    return (approx.DOMAINS[name].operand.startswith("|")
            and {**approx.defaults(name), **static}.get("signed", True))


def _evaluate(keys, precisions, operands, *, names, n_parties, base, statics):
    """The revealed results of each function of ``names`` (with ``statics``) on its ``operands``,
    shared with each key of ``keys[i]`` (``[P, K]``) at each precision: one tuple entry per name."""
    def one(name, static, ops, key, precision):
        fxp = FixedPoint(base, precision)
        ks = jax.random.split(key, len(ops) + 1)
        shared = [share(ks[i], v, fxp, n_parties) for i, v in enumerate(ops)]
        return reveal(getattr(approx, name)(ks[-1], *shared, **dict(static)))

    return tuple(
        jax.vmap(lambda p, kp, f=functools.partial(one, name, static, ops): jax.vmap(lambda k: f(k, p))(kp))(
            precisions, keys[i])
        for i, (name, static, ops) in enumerate(zip(names, statics, operands)))


_compiled = jax.jit(_evaluate, static_argnames=("names", "n_parties", "base", "statics"))


def _count(v, what: str, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise InputTypeError(f"accuracy: {what} must be a Python int >= {low}, got {v!r}.")
    return v


def _measure(names, statics, *, precisions, n_parties, points, keys, seed) -> dict:
    """:class:`Measurement` lists of every name (with its static arguments), all in one jitted call."""
    for name in names:
        _check_name(name)
    _count(points, "points", 2)
    _count(keys, "keys", 1)
    precisions = tuple(int(p) for p in precisions)
    operands = tuple(inputs(name, points, **st) for name, st in zip(names, statics))
    k = []
    for name in names:  # each function its own keys, whatever else is measured with it
        root = jax.random.fold_in(make_key(seed), NAMES.index(name))
        k.append(jax.random.split(root, len(precisions) * keys).reshape(len(precisions), keys))
    outs = _compiled(tuple(k), jnp.asarray(precisions, jnp.int32),
                     tuple(tuple(jnp.asarray(v, jnp.float64) for v in ops) for ops in operands),
                     names=tuple(names), n_parties=n_parties, base=2,
                     statics=tuple(tuple(sorted(st.items())) for st in statics))
    return {name: _rows(name, st, ops, np.asarray(out), precisions, n_parties)
            for name, st, ops, out in zip(names, statics, operands, outs)}


def _rows(name, static, ops, out, precisions, n_parties) -> list:
    used = {k: v for k, v in approx.defaults(name).items()
            if k != "truncation" and (isinstance(v, (int, str)) or v is None)}
    used.update(static)
    if used.get("iterations", 0) is None:  # the range's default (approx.ITERATIONS)
        used["iterations"] = approx.ITERATIONS[name][used["range"]]
    low, high = approx.domain(name, **static)
    twin = np.asarray(getattr(approx, name + "_plain")(*(jnp.asarray(v) for v in ops), **static))
    t_err, t_abs = _errors(twin, EXACT[name](*ops))  # the approximation alone, on the grid itself
    subject = ops[-1] if name not in ROWS else -ops[0][:, -1]  # the domain's operand (a row's spread)
    rows = []
    for i, p in enumerate(precisions):
        exact = EXACT[name](*(encoded(v, p) for v in ops))
        err, ab = _errors(out[i], exact)
        scaled = np.abs(out[i] - exact) / np.maximum(1.0, np.abs(exact))
        where = np.unravel_index(np.argmax(scaled), scaled.shape)[1]  # the grid point (drop the key axis)
        rows.append(Measurement(name, n_parties, p, used, low, high, int(subject.shape[0]), err, ab,
                                float(subject[where]), t_err, t_abs, ops, out[i]))
    return rows


def encoded(v, precision: int) -> np.ndarray:
    """The values the parties hold for the reals ``v`` at ``precision`` fractional bits (base 2,
    rounded to nearest, as :meth:`jaxmpc.FixedPoint.encode`), as float64."""
    s = 2.0 ** precision
    return np.round(np.asarray(v, np.float64) * s) / s


def _errors(y: np.ndarray, exact: np.ndarray) -> tuple:
    d = np.abs(y - exact)
    return float(np.max(d / np.maximum(1.0, np.abs(exact)))), float(np.max(d))


def measure(name: str, *, precisions=(PRECISION,), n_parties: int = 2, points: int = POINTS,
            keys: int = KEYS, seed: int = 0, **static) -> list:
    """:class:`Measurement` of ``name`` at each of ``precisions`` (fractional bits, base 2) on
    :func:`inputs` ``(name, points, **static)``, with ``keys`` keys (see the module notes)."""
    return _measure((name,), (static,), precisions=precisions, n_parties=n_parties, points=points,
                    keys=keys, seed=seed)[name]


def measure_all(*, precisions=(PRECISION,), n_parties: int = 2, points: int = POINTS, keys: int = KEYS,
                seed: int = 0) -> dict:
    """``{name: measure(name, ...)}`` for every approximation at its defaults, computed in one jitted
    call (one compile for all: what :func:`page` uses; the results equal :func:`measure`'s)."""
    return _measure(NAMES, ({},) * len(NAMES), precisions=precisions, n_parties=n_parties,
                    points=points, keys=keys, seed=seed)


# ---- docs/approx.md -------------------------------------------------------------------------------
COST_ELEMENTS = 64  # the elements per call whose cost the page divides (rows of 8 for the row functions)
OPTIONS = (("reciprocal", {"range": "narrow"}), ("divide", {"range": "narrow"}),
           ("rsqrt", {"range": "narrow"}), ("sqrt", {"range": "narrow"}))  # the page's cost table


def cost_per_element(name: str, n_parties: int = 2, **static) -> tuple:
    """``(rounds, bytes sent per party per element, bytes dealt per party per element)`` of one call
    of ``name`` on ``COST_ELEMENTS`` elements (:func:`jaxmpc.cost`: traced, nothing runs)."""
    from ..protocols.shared import Shared
    from ..trace.accounting import cost
    _check_name(name)
    shape = (COST_ELEMENTS // SOFTMAX_ROW, SOFTMAX_ROW) if name in ROWS else (COST_ELEMENTS,)
    fxp = FixedPoint(2, PRECISION)
    x = Shared(jax.ShapeDtypeStruct((n_parties,) + shape, jnp.uint64), fxp)
    args = (x, x) if name == "divide" else (x,)
    r = cost(getattr(approx, name), make_key(0), *args, **static)
    return r.rounds, r.bytes_per_party / COST_ELEMENTS, r.dealer_bytes_per_party / COST_ELEMENTS

def _num(v: float) -> str:
    """3 significant digits; float64 rounding noise (below 1e-12) as such."""
    return "< 1e-12" if v < 1e-12 else f"{v:.3g}"


def _interval(low: float, high: float) -> str:
    return f"[{low:g}, {high:g}]"


def page(points: int = POINTS, keys: int = KEYS, parties=PARTIES, precision: int = PRECISION) -> str:
    """The text of ``docs/approx.md``: every approximation at its defaults, measured with
    :func:`measure` at ``precision`` fractional bits for each party count of ``parties``."""
    rows = {n: [ms[0] for ms in measure_all(precisions=(precision,), n_parties=n, points=points,
                                            keys=keys).values()] for n in parties}
    head = ["function", "domain", "defaults", "points", "twin error"]
    head += [f"error, {n} parties" for n in parties] + [f"abs, {n} parties" for n in parties]
    head += [f"worst input ({parties[0]}p)", "bound", "rounds (2p)", "bytes/element (2p)"]
    lines = [
        "# Accuracy of the approximations",
        "",
        "Generated from the code by `jaxmpc.ops.accuracy`; do not edit it by hand. Regenerate it with",
        "",
        f"    {COMMAND}",
        "",
        "(`--check` exits 1 with a diff when this file is stale; `tests/test_approx.py` fails then, and",
        "when an error exceeds its bound.)",
        "",
        "- Each function of `jaxmpc.ops.approx` is evaluated at its default iteration counts on a grid of",
        "  its documented domain (`jaxmpc.ops.approx.DOMAINS`, both edges included): "
        f"{points} points linear over",
        f"  the domain, {points} geometric over a positive one and {points} linear over its part in "
        f"[-{DENSE:g}, {DENSE:g}]",
        f"  (`points`: how many distinct ones). Inputs are shared at base 2 with {precision} fractional "
        "bits,",
        f"  dealer truncation, with {keys} keys each, and the revealed results are compared with float64",
        "  (numpy) of the encoded inputs (each grid point rounded to the precision: what the parties hold;",
        "  the twin error is on the grid points themselves).",
        "- `error`: the largest |y - f(x)| / max(1, |f(x)|) (absolute where |f| <= 1, relative above);",
        "  `abs`: the largest |y - f(x)|; `twin error`: the error of the plaintext twin (the same",
        "  approximation in float64: the approximation alone, no MPC); `worst input`: where `error` is",
        "  largest.",
        "- `bound`: `DOMAINS[name].bound`, the bound the docstrings state; every error of its row is",
        "  below it (the test checks it).",
        "- A domain of |x| (`reciprocal`, `divide`: any sign) is measured on the grid and its negation.",
        "- `divide` is measured on its divisor's grid with dividends in [-8, 8]; `softmax` and",
        f"  `log_softmax` on rows of {SOFTMAX_ROW} entries from 0 down to -t, one row per grid point t of "
        "their spread",
        "  (their domain: x_i - max x).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for i, name in enumerate(NAMES):
        ms = [rows[n][i] for n in parties]
        first = ms[0]
        static = ", ".join(f"{k}={v}" for k, v in first.static.items())
        operand = approx.DOMAINS[name].operand.replace("|", "\\|")  # a bar would end the cell
        cells = [f"`{name}`", f"{operand} in {_interval(first.low, first.high)}",
                 static, str(first.size), _num(first.twin_err)]
        cells += [_num(m.err) for m in ms] + [_num(m.abs) for m in ms]
        cells += [f"{first.worst:.4g}", f"{approx.DOMAINS[name].bound:g}"]
        rounds, sent, _ = cost_per_element(name)
        cells += [str(rounds), f"{sent:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Costs of the other options (2 parties; `rounds (2p)`, `bytes/element (2p)`: the rounds and the",
              f"bytes each party sends per element, of one call on {COST_ELEMENTS} elements, from `jaxmpc.cost`):",
              "", "| function | options | domain | rounds | bytes/element |", "|---|---|---|---|---|"]
    for name, static in OPTIONS:
        rounds, sent, _ = cost_per_element(name, **static)
        opts = ", ".join(f"{k}={v}" for k, v in static.items())
        operand = approx.DOMAINS[name].operand.replace("|", "\\|")
        lines.append(f"| `{name}` | {opts} | {operand} in {_interval(*approx.domain(name, **static))} | "
                     f"{rounds} | {sent:.0f} |")
    lines += ["", "Domains in words:", ""]
    lines += [f"- `{name}`: {approx.DOMAINS[name].text}" for name in NAMES]
    return "\n".join(lines) + "\n"


def problems(generated: str, on_disk: str | None, path: str = "docs/approx.md") -> str:
    """What is wrong with the file at ``path`` whose text is ``on_disk`` (``None``: missing), given
    the ``generated`` page: empty when nothing is, else the diff and the command to regenerate."""
    if on_disk is None:
        return f"{path} is missing: generate it with {COMMAND}"
    if on_disk == generated:
        return ""
    diff = "".join(difflib.unified_diff(on_disk.splitlines(keepends=True),
                                        generated.splitlines(keepends=True),
                                        fromfile=f"{path} (on disk)", tofile=f"{path} (from the code)"))
    return f"{path} is stale (it differs from what the code gives):\n{diff}Regenerate it with {COMMAND}"
