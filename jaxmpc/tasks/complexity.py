r"""The complexity tables of ``docs/complexity.md``: rounds and bytes of every kernel and public
protocol, per registered family and ring, at 2, 3 and 5 parties, traced with :func:`jaxmpc.cost` on
abstract inputs (:class:`jax.ShapeDtypeStruct` shares: nothing runs or compiles), beside the same
figures computed from the family's cost formulas (:attr:`~jaxmpc.protocols.interface.Kernel.formula`).

:func:`generate` gives the text and the measured rows; ``experiments/complexity.py`` writes the
text (``--check`` compares it with the file), and ``tests/test_complexity_doc.py`` fails when the
file is stale or when a formula differs from its tally. The tables are generated from the code,
never written by hand (as SPU's ``docs/reference/complexity.md``), so they cannot go stale unseen.

Every family in :func:`jaxmpc.protocols.interface.names` gets a section for each ring it supports;
a party count it does not support, or a truncation option it does not offer there, is a dash.

A row is a :class:`Case`: a call on abstract inputs of :data:`M` elements (or of the shapes in
:data:`SHAPES`) and, where the call is a sum of kernel calls, its ``terms``: kernels and their
:data:`~jaxmpc.protocols.interface.FORMULA_SIZES`, e.g. ``mul`` of two fixed-point values of
:math:`m` elements is ``product(m, m, m) + truncate(m, "default")`` (the family's default truncation). Comparisons and the layers are
written once against the kernels, so their terms hold for every family.

Example:
    >>> import jax; jax.config.update("jax_enable_x64", True)
    >>> from jaxmpc.tasks import complexity
    >>> complexity.measure("additive", 64, 3, "open")  # (rounds, bytes sent per party, dealt)
    (1, 16384, 0)
    >>> complexity.measure("additive", 64, 3, "open", formula=True)
    (1, 16384, 0)
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
from typing import Callable

import jax

from .. import nn
from ..core import ring
from ..core.fixedpoint import FixedPoint
from ..errors import InputTypeError
from ..nn import losses
from ..ops import approx, compare
from ..protocols import arith, interface
from ..protocols.interface import Family, Protocol
from ..protocols.shared import Shared, reveal
from ..trace import accounting
from . import tutorial

M = 1024  # elements of every elementwise input of the main tables
SIZES = (1, 100)  # the element counts of the "other sizes" table (not multiples of 8 or 64)
PARTIES = (2, 3, 5)
FXP_BASE, FXP_PRECISION = 2, 16  # the encoding of every fixed-point input (built lazily: import makes no array)
FXP_PRECISION_32 = 12  # ... on Z_2^32 (which holds base-2 precisions up to 14); costs do not depend on it
COMMAND = ".venv/bin/python experiments/complexity.py"
SHAPES = {  # the inputs that are not M elements in a row
    "matmul": ((32, 32), (32, 32)),
    "conv2d": ((1, 4, 16, 16), (4, 4, 3, 3)),  # padding 1: output (1, 4, 16, 16)
    "pool": (1, 4, 16, 16),  # 2x2 windows, stride 2: output (1, 4, 8, 8)
    "linear": (32, 32),  # Linear(32, 32) on a batch of 32
}
DEFAULT_TRUNCATION = interface.DEFAULT_TRUNCATION  # the default of every function that truncates

Figures = tuple[int, int, int]  # (rounds, bytes sent per party, bytes dealt per party)


@functools.cache
def _fxp(ring_bits: int = 64) -> FixedPoint:
    return FixedPoint(FXP_BASE, FXP_PRECISION if ring_bits == 64 else FXP_PRECISION_32).on_ring(ring_bits)


def _dtype(p: Protocol):
    return ring.dtype(p.ring_bits)


_DEFAULT = object()  # "the fixed-point encoding" (``None`` means a plain integer)


def _sds(p: Protocol, shape, fxp=_DEFAULT) -> Shared:
    """An abstract shared value: shares ``uint64[n, *shape]`` (the ring's words), no data."""
    fxp = _fxp(p.ring_bits) if fxp is _DEFAULT else fxp
    return Shared(jax.ShapeDtypeStruct((p.n_parties,) + tuple(shape), _dtype(p)), fxp, p)


def _words(p: Protocol, m: int):
    """Abstract raw (or XOR) shares of ``m`` ring words, ``uint64[n, m]`` (the ring's words)."""
    return jax.ShapeDtypeStruct((p.n_parties, m), _dtype(p))


def _key():
    return jax.random.key(0)


def _size(shape) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out


@dataclasses.dataclass(frozen=True)
class Case:
    """One row of a table.

    Attributes:
        name: the label (a kernel's rows start with the kernel's name).
        inputs: the inputs, in words.
        build: ``build(p) -> (fn, args)``: the call on abstract inputs under protocol ``p``.
        terms: the call as a sum of kernel calls, ``((kernel, *sizes), ...)`` with the kernel's
            ``FORMULA_SIZES``; ``()`` where it is not written down.
        truncation: the truncation option the row needs (``None``: the default, offered by every
            family); a party count where the family does not offer it is a dash.
    """

    name: str
    inputs: str
    build: Callable[[Protocol], tuple]
    terms: tuple = ()
    truncation: str | None = None

    def offered(self, p: Protocol) -> bool:
        fam = interface.family(p.family)
        return self.truncation is None or fam.resolve_truncation(self.truncation) in fam.truncations_at(
            p.n_parties)

    def traced(self, p: Protocol) -> Figures | None:
        """The tallies of :func:`jaxmpc.cost` of the call (``None``: not offered at ``p``)."""
        if not self.offered(p):
            return None
        fn, args = self.build(p)
        r = accounting.cost(fn, *args)
        return int(r.rounds), int(r.bytes_per_party), int(r.dealer_bytes_per_party)

    def formula(self, p: Protocol) -> Figures | None:
        """The sum of the terms' :attr:`Kernel.formula` (``None``: no terms, a kernel without a
        formula, or not offered at ``p``)."""
        kernels = interface.family(p.family).kernels
        if not self.terms or not self.offered(p) or any(kernels[t[0]].formula is None for t in self.terms):
            return None
        fam = interface.family(p.family)  # "default" is the family's own default truncation
        figures = [kernels[name].formula(p, *(fam.resolve_truncation(s) for s in sizes))
                   for name, *sizes in self.terms]
        return tuple(sum(f[i] for f in figures) for i in range(3))

    def terms_text(self) -> str:
        return " + ".join(f"`{name}`({', '.join(str(s) for s in sizes)})" for name, *sizes in self.terms)


# ---- the rows -------------------------------------------------------------------------------------
def _product_case(name: str, inputs: str, m: int, integer: bool = False) -> Case:
    """``mul`` of two values of ``m`` elements (the second plain integer: no truncation)."""
    terms = (("product", m, m, m),) + (() if integer else (("truncate", m, DEFAULT_TRUNCATION),))
    y_fxp = None if integer else _DEFAULT
    return Case(name, inputs, lambda p: (arith.mul, (_key(), _sds(p, (m,)), _sds(p, (m,), y_fxp))), terms)


def _open_case(m: int) -> Case:
    return Case("`open` (via `reveal`)", f"({m},)", lambda p: (reveal, (_sds(p, (m,)),)), (("open", m),))


def _truncate_case(m: int, t: str) -> Case:
    return Case(f"`truncate` ({t})", f"({m},) by 1000",
                lambda p: (lambda k, x: arith.truncate(k, x, 1000, truncation=t),
                           (_key(), _sds(p, (m,), None))),
                (("truncate", m, t),), truncation=t)


def _and_case(m: int) -> Case:
    return Case("`and`", f"{m} XOR-shared words",
                lambda p: (lambda k, x, y: interface.family(p.family).kernel("and")(k, x, y, "and"),
                           (_key(), _words(p, m), _words(p, m))), (("and", m),))


def _b2a_case(m: int) -> Case:
    return Case("`b2a`", f"{m} XOR-shared bits",
                lambda p: (interface.family(p.family).kernel("b2a"), (_key(), _words(p, m))), (("b2a", m),))


def _msb_case(m: int) -> Case:
    return Case("`msb` (via `jaxmpc.msb`)", f"({m},)", lambda p: (compare.msb, (_key(), _sds(p, (m,)))),
                (("msb", m),))


def kernel_cases(fam: Family) -> list[Case]:
    """The rows of the kernel table of ``fam``: each kernel through the function that calls it."""
    m, (a, b), (x4, w4) = M, SHAPES["matmul"], SHAPES["conv2d"]
    za, zc = a[0] * b[1], x4[0] * w4[0] * x4[2] * x4[3]  # the product's elements (conv2d: padding 1)
    def values(p):
        return jax.ShapeDtypeStruct((m,), _dtype(p))

    out = [
        Case("`share`", f"{m} ring values",
             lambda p: (lambda k, v: interface.family(p.family).kernel("share")(k, [v], p.n_parties),
                        (_key(), values(p))), (("share", m),)),
        _open_case(m),
        _product_case("`product`: `mul`", f"({m},) * ({m},)", m),
        _product_case("`product`: `mul`, integer operand", f"({m},) * ({m},) plain integer", m, integer=True),
        Case("`product`: `matmul`", f"{a} @ {b}",
             lambda p: (arith.matmul, (_key(), _sds(p, a), _sds(p, b))),
             (("product", _size(a), _size(b), za), ("truncate", za, DEFAULT_TRUNCATION))),
        Case("`product`: `conv2d`", f"x {x4}, w {w4}, padding 1",
             lambda p: (lambda k, x, w: arith.conv2d(k, x, w, padding=1), (_key(), _sds(p, x4), _sds(p, w4))),
             (("product", _size(x4), _size(w4), zc), ("truncate", zc, DEFAULT_TRUNCATION))),
        Case("`square_sum`", f"({m},) by 3",
             lambda p: (lambda k, x: arith.square_sum(k, x, divisor=3), (_key(), _sds(p, (m,)))),
             (("square_sum", m), ("truncate", 1, DEFAULT_TRUNCATION))),
    ]
    out += [_truncate_case(m, t) for t in fam.truncations]
    half = m // 2
    out += [Case(f"`truncate_many` ({t})", f"2 x ({half},) by 7 and 1000",
                 lambda p, t=t: (
                     lambda k, x, y: arith.truncate_many(k, [x, y], [7, 1000], truncation=t),
                     (_key(), _sds(p, (half,), None), _sds(p, (half,), None))),
                 (("truncate_many", 2 * half, t),), truncation=t)
            for t in fam.truncations]
    out += [Case("`xor_share`", f"{m} words",
                 lambda p: (lambda k, v: interface.family(p.family).kernel("xor_share")(k, v, p.n_parties),
                            (_key(), values(p))), (("xor_share", m),)),
            _and_case(m), _b2a_case(m), _msb_case(m)]
    return out


def size_cases(m: int) -> list[Case]:
    """The kernels whose formulas are not linear in ``m`` (or are the common ones), at ``m`` elements."""
    return [_open_case(m), _product_case("`product`: `mul`", f"({m},) * ({m},)", m),
            _truncate_case(m, DEFAULT_TRUNCATION), _and_case(m), _b2a_case(m), _msb_case(m)]


def _linear_forward(key, x, w, b):
    return nn.Linear(*SHAPES["linear"][::-1]).forward(key, {"weight": w, "bias": b}, x)[0]


def _linear_step(key, x, w, b, dy):
    layer = nn.Linear(*SHAPES["linear"][::-1])
    k_f, k_b = jax.random.split(key)
    params = {"weight": w, "bias": b}
    y, res = layer.forward(k_f, params, x)
    grads, dx = layer.backward(k_b, params, res, dy)
    return y, grads, dx


def protocol_cases() -> list[Case]:
    """The rows of the public-protocol table (the same for every family)."""
    m, pool, (b, i) = M, SHAPES["pool"], SHAPES["linear"]
    t = DEFAULT_TRUNCATION
    one = lambda f: (lambda p: (f, (_key(), _sds(p, (m,)))))  # noqa: E731  f(key, x) on (M,)
    two = lambda f: (lambda p: (f, (_key(), _sds(p, (m,)), _sds(p, (m,)))))  # noqa: E731
    lin_fwd = (("product", b * i, i * i, b * i), ("truncate", b * i, t))  # y = x W^T (+ b, local)
    lin_bwd = (("product", b * i, b * i, i * i), ("truncate", i * i, t),  # dW = dy^T x
               ("product", b * i, i * i, b * i), ("truncate", b * i, t))  # dx = dy W
    n_pool = _size(pool) // 4
    return [
        Case("`mul_public`", f"({m},) times 0.5", one(lambda k, x: arith.mul_public(k, x, 0.5)),
             (("truncate", m, t),)),
        Case("`div_public`", f"({m},) by 3", one(lambda k, x: arith.div_public(k, x, 3)),
             (("truncate", m, t),)),
        Case("`relu`", f"({m},)", one(compare.relu), (("msb", m), ("product", m, m, m))),
        Case("`where`", f"bit ({m},), x, y ({m},)",
             lambda p: (compare.where, (_key(), _sds(p, (m,), None), _sds(p, (m,)), _sds(p, (m,)))),
             (("product", m, m, m),)),
        Case("`exp`", f"({m},)", one(approx.exp)),
        Case("`reciprocal`", f"({m},)", one(approx.reciprocal)),
        Case("`sigmoid`", f"({m},)", one(approx.sigmoid)),
        Case("`MaxPool2d(2)` forward", f"{pool}",
             lambda p: (lambda k, x: nn.MaxPool2d(2).forward(k, {}, x)[0], (_key(), _sds(p, pool)))),
        Case("`AvgPool2d(2)` forward", f"{pool}",
             lambda p: (lambda k, x: nn.AvgPool2d(2).forward(k, {}, x)[0], (_key(), _sds(p, pool))),
             (("truncate", n_pool, t),)),
        Case(f"`Linear({i}, {i})` forward", f"x {(b, i)}",
             lambda p: (_linear_forward, (_key(), _sds(p, (b, i)), _sds(p, (i, i)), _sds(p, (i,)))), lin_fwd),
        Case(f"`Linear({i}, {i})` forward + backward", f"x {(b, i)}, dy {(b, i)}",
             lambda p: (_linear_step, (_key(), _sds(p, (b, i)), _sds(p, (i, i)), _sds(p, (i,)),
                                       _sds(p, (b, i)))),
             lin_fwd + lin_bwd),
        Case("`losses.mse`", f"({m},), ({m},)", two(losses.mse),
             (("square_sum", m), ("truncate", 1, t), ("truncate", m, t))),
        Case("seed task: one training step", "4 x 2 data, 2-2-1 ReLU net, SSE, SGD, loss revealed",
             lambda p: (lambda k: tutorial.run(k, 3, n_parties=p.n_parties, iterations=1,
                                               protocol=p.family, ring=p.ring_bits), (_key(),))),
    ]


# ---- measuring and rendering -----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Row:
    """A :class:`Case` measured under one family and ring: per party count in :data:`PARTIES`, the
    traced figures and the formula's (``None``: not offered there, or no formula)."""

    family: str
    ring_bits: int
    case: Case
    traced: dict
    formula: dict

    def mismatches(self) -> list[str]:
        """One line per party count where the formula differs from the tally."""
        return [f"{self.family} over Z_2^{self.ring_bits}, {self.case.name} on {self.case.inputs}, "
                f"{n} parties: traced {self.traced[n]}, formula {self.case.terms_text()} = {self.formula[n]} "
                "(rounds, bytes sent per party, bytes dealt per party)"
                for n in PARTIES if self.formula[n] is not None and self.formula[n] != self.traced[n]]

    def check(self) -> str:
        """The "formula" cell: whether the formula agrees with the tally."""
        if not self.case.terms:
            return "-"
        if all(self.formula[n] is None for n in PARTIES if self.traced[n] is not None):
            return "no `Kernel.formula`"
        bad = [n for n in PARTIES if self.formula[n] is not None and self.formula[n] != self.traced[n]]
        if not bad:
            return self.case.terms_text()
        return self.case.terms_text() + ": DIFFERS at " + ", ".join(
            f"{n}p ({' / '.join(map(str, self.formula[n]))})" for n in bad)


def measure_rows(fam: Family, ring_bits: int, cases: list[Case]) -> list[Row]:
    """Trace every case at every party count of :data:`PARTIES` that ``fam`` supports."""
    protos = {n: interface.protocol(fam.name, n, ring_bits) if fam.supports(n, ring_bits) else None
              for n in PARTIES}
    out = []
    for c in cases:
        traced = {n: None if p is None else c.traced(p) for n, p in protos.items()}
        formula = {n: None if p is None else c.formula(p) for n, p in protos.items()}
        out.append(Row(fam.name, ring_bits, c, traced, formula))
    return out


def measure(family: str, ring_bits: int, n_parties: int, name: str, *,
            formula: bool = False) -> Figures | None:
    """``(rounds, bytes sent per party, bytes dealt per party)`` of the row called ``name`` of the
    main tables (as in the table; the backticks and a ``" (via ...)"`` may be left out), traced, or
    from the kernels' formulas with ``formula=True``; ``None`` where the row is not offered (or has no
    formula)."""
    p = interface.protocol(family, n_parties, ring_bits)
    cases = kernel_cases(interface.family(family)) + protocol_cases()
    for c in cases:
        if name in (c.name, c.name.replace("`", ""), c.name.replace("`", "").split(" (via")[0]):
            return c.formula(p) if formula else c.traced(p)
    raise InputTypeError(f"complexity.measure: no row called {name!r}; the rows are "
                         f"{[c.name for c in cases]}.")


def _cell(text: str) -> str:
    """``text`` as a Markdown table cell (``|`` escaped)."""
    return text.replace("|", "\\|")


def _table(first: str, rows: list[Row]) -> list[str]:
    head = [first, "inputs"] + [f"{n}p {q}" for n in PARTIES for q in ("rounds", "sent", "dealt")]
    head.append("from the kernels' formulas")
    out = ["| " + " | ".join(head) + " |", "|---|---|" + "--:|" * (3 * len(PARTIES)) + "---|"]
    for r in rows:
        cells = [r.case.name, r.case.inputs]
        for n in PARTIES:
            cells += ["-"] * 3 if r.traced[n] is None else [str(v) for v in r.traced[n]]
        cells.append(r.check())
        out.append("| " + " | ".join(cells) + " |")
    return out


def _formula_table(fam: Family) -> list[str]:
    out = ["| kernel | `Kernel.cost` | `Kernel.formula(p, ...)` sizes |", "|---|---|---|"]
    for name in interface.KERNELS:
        k = fam.kernels[name]
        sizes = interface.FORMULA_SIZES[name] if k.formula is not None else "(no formula: text only)"
        out.append(f"| `{name}` | {_cell(k.cost)} | {sizes} |")
    return out


def _header() -> list[str]:
    mm, (x4, w4) = SHAPES["matmul"], SHAPES["conv2d"]
    return [
        "# Complexity of the kernels and public protocols",
        "",
        "Generated from the code by `jaxmpc.tasks.complexity`; do not edit it by hand. Regenerate it with",
        "",
        f"    {COMMAND}",
        "",
        "(`--check` exits 1 with a diff when this file is stale; `tests/test_complexity_doc.py` fails then,",
        "and when a family's `Kernel.formula` differs from the traced cost). The figures are `jaxmpc.cost`",
        "on abstract inputs (`jax.ShapeDtypeStruct` shares): nothing runs or compiles.",
        "",
        f"- One section per registered protocol family and ring. Each row is one call on m = {M} elements",
        f"  unless its inputs say otherwise: matmul {mm[0]} @ {mm[1]}, conv2d of x {x4} with w {w4}",
        f"  (padding 1), pooling of {SHAPES['pool']} in 2x2 windows, `Linear` on a batch {SHAPES['linear']}.",
        "  The seed task is `jaxmpc.tasks.tutorial.run` (base 10, precision 3) with one step; its",
        f"  {tutorial.ITERATIONS} steps cost {tutorial.ITERATIONS} times that (sharing the data and the "
        "net is free).",
        f"- Shares are fixed point ({FXP_BASE}^{FXP_PRECISION}; {FXP_BASE}^{FXP_PRECISION_32} on Z_2^32) unless a row says plain integer. Options "
        "are the",
        f"  defaults (`truncation=\"{DEFAULT_TRUNCATION}\"`, `mode=\"protocol\"`; every mode records "
        "the same",
        "  cost) unless a row names one.",
        "- `Np rounds`: sequential rounds among N parties (summed over the steps, nothing overlapped);",
        "  `Np sent`: bytes each party sends; `Np dealt`: bytes of dealer material each party receives.",
        "  Bytes are whole bytes per message (docs/cost.md). In the formulas, l is the ring's width and",
        "  w = l/8 the bytes of one ring element (8 on Z_2^64, 4 on Z_2^32). A dash: the family does not offer that",
        "  option or party count.",
        "- \"From the kernels' formulas\": the row as a sum of kernel calls, each a `Kernel.formula` of the",
        "  sizes in the family's formula table; every figure of the row equals that sum (the test checks",
        "  it; a differing sum would be printed here). A dash: the row is not written as such a sum",
        "  (iterations, tournaments, whole layers).",
    ]


@dataclasses.dataclass(frozen=True)
class Doc:
    """The text of ``docs/complexity.md`` and the rows it was made from."""

    text: str
    rows: list

    def mismatches(self) -> list[str]:
        return [line for r in self.rows for line in r.mismatches()]


def generate() -> Doc:
    """Measure every table and render ``docs/complexity.md`` from the code as it is now."""
    lines, all_rows = _header(), []
    for name in interface.names():
        fam = interface.family(name)
        for bits in fam.rings:
            kernels = measure_rows(fam, bits, kernel_cases(fam))
            protocols = measure_rows(fam, bits, protocol_cases())
            sized = [r for m in SIZES for r in measure_rows(fam, bits, size_cases(m))]
            all_rows += kernels + protocols + sized
            lines += ["", f"## `{fam.name}` over Z_2^{bits}", "",
                      f"{fam.doc[:1].upper() + fam.doc[1:]}. Parties: {fam.party_range()}; truncation "
                      f"options: {', '.join(f'`{t}`' for t in fam.truncations)}.", "",
                      "### Cost formulas of the kernels", "",
                      "The family's `Kernel.cost` (n parties; bytes sent per party, dealt to each party) and",
                      "the sizes its `Kernel.formula` takes after the protocol.", ""]
            lines += _formula_table(fam)
            lines += ["", "### Kernels", ""] + _table("kernel", kernels)
            lines += ["", "### Public protocols", ""] + _table("protocol", protocols)
            lines += ["", f"### Kernels at other sizes (m = {', '.join(map(str, SIZES))})", ""]
            lines += _table("kernel", sized)
    return Doc("\n".join(lines) + "\n", all_rows)


def render() -> str:
    """The text of ``docs/complexity.md``, from the code as it is now."""
    return generate().text


def diff(on_disk: str, generated: str, path: str = "docs/complexity.md") -> str:
    """A unified diff from ``on_disk`` to ``generated`` (empty when they are equal)."""
    return "".join(difflib.unified_diff(on_disk.splitlines(keepends=True),
                                        generated.splitlines(keepends=True),
                                        fromfile=f"{path} (on disk)", tofile=f"{path} (from the code)"))


def problems(doc: Doc, on_disk: str | None, path: str = "docs/complexity.md") -> str:
    """What is wrong with the file at ``path`` whose text is ``on_disk`` (``None``: missing), given
    a fresh ``doc``: the formulas that differ from their tallies, then the diff from the file to
    ``doc.text`` with the command that regenerates it. Empty when nothing is."""
    out = []
    bad = doc.mismatches()
    if bad:
        out.append("Kernel.formula differs from the traced jaxmpc.cost (fix the formula or the kernel):\n"
                   + "\n".join(f"  {line}" for line in bad))
    if on_disk is None:
        out.append(f"{path} is missing: generate it with {COMMAND}")
    elif on_disk != doc.text:
        out.append(f"{path} is stale (it differs from what the code gives):\n{diff(on_disk, doc.text, path)}"
                   f"Regenerate it with {COMMAND}")
    return "\n".join(out)
