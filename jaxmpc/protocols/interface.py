r"""The protocol interface: what a sharing scheme is (:class:`Protocol`), what a family of them must
implement (:class:`Family`, its :class:`Kernel` set), and the registry that maps names to families.

A :class:`~jaxmpc.Shared` carries its :class:`Protocol` (family name, number of parties, ring width)
as static pytree data next to its encoding, so ``jit`` specialises on it and every function finds
the protocol from its arguments; values of different protocols never mix
(:func:`common_protocol` raises :class:`~jaxmpc.errors.ShareMismatchError`).

The kernels a family implements (SPU's ``semi2k`` / ``aby3`` kernel set is the model); everything
above them (comparison, approximations, layers, losses, optimizers) is written once:

=================  =====================================================================================
``share``          ``(key, values: [uint64[*s]], n_parties) -> [uint64[n, *s]]``: sharings of public
                   ring values, all drawn at once
``open``           ``(shares: uint64[n, *s]) -> uint64[*s]``: the ring value, to every party
``product``        ``(key, x, y, op, name, truncation, mode, op_opened) -> Shared``: the generic
                   bilinear product (``op`` is the elementwise product, a matmul or a convolution),
                   truncated back to the operands' scale when both are fixed point
``square_sum``     ``(key, x, divisor, truncation) -> Shared``: :math:`\sum x^2 / (s D)`, a scalar
``truncate``       ``(key, shares, divisor, truncation) -> shares``: division by a public integer
``truncate_many``  ``(key, [shares], [divisor], truncation) -> [shares]``: several at once
``xor_share``      ``(key, words: uint64[*s], n_parties) -> uint64[n, *s]``: XOR sharing of words
``and``            ``(key, x, y, name) -> z``: XOR shares of the bitwise AND of XOR-shared words
``b2a``            ``(key, bit) -> shares``: additive shares of a bit from XOR shares of it
``msb``            ``(keys, shares, mode) -> shares``: shares of the most significant bit, from
                   ``Kernel.keys`` keys split by the caller
=================  =====================================================================================

A family also says which truncation options it offers (``check_truncation``). The simulation
``mode`` (:data:`MODES`) is the simulator's, not the family's: every family runs ``"protocol"``
(bit-exact shares at the least work), ``"faithful"`` (every party's share computed as written) and
``"ideal"`` (the ideal functionality: exact outputs freshly shared, the protocol's cost recorded).

Each :class:`Kernel` holds its body and its cost formula: as text (:attr:`Kernel.cost`) and, where the
family gives it, as a function (:attr:`Kernel.formula`) of the protocol and the element counts of
:data:`FORMULA_SIZES`, returning ``(rounds, bytes sent per party, bytes dealt per party)``.
``tests/test_complexity_doc.py`` checks every formula against the tallies of
:mod:`jaxmpc.trace.accounting` (the code that runs), and ``docs/complexity.md`` shows both.

Example:
    >>> import jaxmpc
    >>> from jaxmpc.protocols import interface
    >>> interface.family("additive").rings, interface.names()
    ((64, 32), ('additive', 'replicated'))
    >>> interface.protocol("additive", 3, 64)
    Protocol(family='additive', n_parties=3, ring_bits=64)
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import numpy as np

from ..errors import InputTypeError, ProtocolError, ShareMismatchError

KERNELS = ("share", "open", "product", "square_sum", "truncate", "truncate_many", "xor_share", "and",
           "b2a", "msb")
MODES = ("protocol", "faithful", "ideal")
DEFAULT_TRUNCATION = "default"  # the default of every function that truncates: the family's own default
FORMULA_SIZES = {  # the arguments of each kernel's Kernel.formula after the Protocol
    "share": "m: ring values shared",
    "open": "m: ring values opened",
    "product": "x, y, z: elements of the operands and of the product (its truncation apart)",
    "square_sum": "x: elements of x (the truncation of the sum apart)",
    "truncate": "m, truncation: elements, the truncation option",
    "truncate_many": "m, truncation: elements of all the arrays together, the truncation option",
    "xor_share": "m: words shared",
    "and": "m: words AND-ed",
    "b2a": "m: bits converted",
    "msb": "m: elements compared",
}


def check_mode(mode) -> None:
    """Raise :class:`~jaxmpc.errors.ProtocolError` unless ``mode`` is one of :data:`MODES`."""
    if mode not in MODES:
        raise ProtocolError(f"mode must be one of {MODES}, got {mode!r}.")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How a value is shared: the family's name, the number of parties and the ring width in bits
    (values live in :math:`\\mathbb{Z}_{2^{\\ell}}`). Static and hashable."""

    family: str
    n_parties: int
    ring_bits: int


@dataclasses.dataclass(frozen=True)
class Kernel:
    r"""One kernel of a family: its body, its cost formula (rounds; bytes sent per party, as text),
    the number of keys it takes, where no option changes them its rounds at ``n`` parties on
    :math:`\mathbb{Z}_{2^\ell}` (``rounds(n, ring_bits=64)``), and the cost formula as a function.

    ``formula(p, *sizes) -> (rounds, bytes sent per party, bytes dealt per party)`` for the
    :class:`Protocol` ``p`` and the kernel's :data:`FORMULA_SIZES`, counted as
    :mod:`jaxmpc.trace.accounting` counts (each message rounded up to whole bytes); ``None`` where
    the family gives only the text. It must equal the traced :func:`jaxmpc.cost` of the kernel's
    calls (``tests/test_complexity_doc.py`` checks it for every registered family).
    """

    body: Callable
    cost: str
    keys: int = 1  # keys the body takes, split by the caller (1: a single key)
    rounds: Callable[..., int] | None = None  # (n parties, ring bits=64) -> rounds, where no option changes them
    formula: Callable[..., tuple[int, int, int]] | None = None  # (p, *sizes) -> (rounds, sent, dealt)


@dataclasses.dataclass(frozen=True)
class Family:
    """A protocol family: a name, the party counts and ring widths it supports, and its kernels.

    Args:
        name: the name users pass as ``jaxmpc.share(..., protocol=name)``.
        rings: the supported ring widths in bits.
        min_parties, max_parties: the supported party counts (``max_parties=None``: no bound).
        kernels: one :class:`Kernel` for every name in :data:`KERNELS`.
        truncations: the names of the truncation options it offers (``truncation=...``).
        check_truncation: ``(truncation, n_parties) -> None``, raising
            :class:`~jaxmpc.errors.ProtocolError` for a truncation option the family does not offer
            at that party count.
        doc: one line on the security model (who is trusted, what is assumed).
        default_truncation: the option that :data:`DEFAULT_TRUNCATION` (``"default"``, the default
            of every function that truncates) selects; ``None``: the first of ``truncations``.
        open_recipients: parties each party sends its share to when a value is opened (``None``:
            the n-1 others, a broadcast; replicated sharing: 1, the neighbour lacking it).
    """

    name: str
    rings: tuple[int, ...]
    min_parties: int
    max_parties: int | None
    kernels: Mapping[str, Kernel]
    truncations: tuple[str, ...]
    check_truncation: Callable[[str, int], None]
    doc: str = ""
    default_truncation: str | None = None
    open_recipients: int | None = None

    def __post_init__(self):
        missing = [k for k in KERNELS if k not in self.kernels]
        if missing:
            raise ProtocolError(f"family {self.name!r} lacks the kernels {missing}; a family "
                                f"implements every one of {KERNELS}.")

    def supports(self, n_parties: int, ring_bits: int) -> bool:
        top = self.max_parties
        return (ring_bits in self.rings and n_parties >= self.min_parties
                and (top is None or n_parties <= top))

    def resolve_truncation(self, truncation):
        """The family's truncation option that ``truncation`` names: its default for
        :data:`DEFAULT_TRUNCATION`, else ``truncation`` itself (checked by ``check_truncation``)."""
        if isinstance(truncation, str) and truncation == DEFAULT_TRUNCATION:
            return self.default_truncation or self.truncations[0]
        return truncation

    def truncation_for(self, truncation, n_parties: int) -> str:
        """:meth:`resolve_truncation`, checked by ``check_truncation`` at ``n_parties``."""
        t = self.resolve_truncation(truncation)
        self.check_truncation(t, n_parties)
        return t

    def truncations_at(self, n_parties: int) -> tuple[str, ...]:
        """The truncation options valid among ``n_parties`` parties."""
        out = []
        for t in self.truncations:
            try:
                self.check_truncation(t, n_parties)
            except ProtocolError:
                continue
            out.append(t)
        return tuple(out)

    def kernel(self, name: str) -> Callable:
        return self.kernels[name].body

    def cost(self, name: str) -> str:
        return self.kernels[name].cost

    def party_range(self) -> str:
        top = "any number" if self.max_parties is None else str(self.max_parties)
        return f"{self.min_parties}" if top == str(self.min_parties) else f"{self.min_parties} to {top}"


_FAMILIES: dict[str, Family] = {}


def register(fam: Family) -> Family:
    """Add a family to the registry (its name must be new)."""
    if fam.name in _FAMILIES and _FAMILIES[fam.name] is not fam:
        raise ProtocolError(f"a protocol family named {fam.name!r} is already registered.")
    _FAMILIES[fam.name] = fam
    return fam


def names() -> tuple[str, ...]:
    """The registered families' names, sorted."""
    return tuple(sorted(_FAMILIES))


def family(name) -> Family:
    """The registered family called ``name``."""
    if name not in _FAMILIES:
        raise ProtocolError(f"unknown protocol {name!r}: the registered families are {names()}. "
                               "Pass one of them as protocol=...")
    return _FAMILIES[name]


def protocol(name, n_parties, ring_bits) -> Protocol:
    """The :class:`Protocol` for ``name`` at ``n_parties`` and ``ring_bits``, checked against what
    the family supports (before any work)."""
    if isinstance(n_parties, bool) or not isinstance(n_parties, (int, np.integer)) or n_parties < 2:
        raise InputTypeError(f"n_parties must be an int >= 2, got {n_parties!r}.")
    if isinstance(ring_bits, bool) or not isinstance(ring_bits, (int, np.integer)):
        raise InputTypeError(f"ring must be the ring width in bits (an int, e.g. 64), got {ring_bits!r}.")
    fam = family(name)
    n_parties, ring_bits = int(n_parties), int(ring_bits)
    if ring_bits not in fam.rings:
        raise ProtocolError(f"protocol {fam.name!r} works over the rings Z_2^l with l in {fam.rings}, "
                            f"got ring={ring_bits}. Pass ring={fam.rings[0]}.")
    if not fam.supports(n_parties, ring_bits):
        raise ProtocolError(f"protocol {fam.name!r} runs among {fam.party_range()} parties, got "
                            f"n_parties={n_parties}.")
    return Protocol(fam.name, n_parties, ring_bits)


def common_protocol(*values, op: str = "this operation") -> Protocol:
    """The protocol shared by every :class:`~jaxmpc.Shared` among ``values`` (others ignored);
    raises :class:`~jaxmpc.errors.ShareMismatchError` when two differ."""
    protos = [v.protocol for v in values if isinstance(getattr(v, "protocol", None), Protocol)]
    if not protos:
        raise InputTypeError(f"{op}: no operand is a jaxmpc.Shared; share one with jaxmpc.share.")
    first = protos[0]
    for p in protos[1:]:
        if p != first:
            raise ShareMismatchError(
                f"{op}: operands are shared under different protocols ({_describe(first)} and "
                f"{_describe(p)}); share every operand with the same protocol, n_parties and ring.")
    return first


def _describe(p: Protocol) -> str:
    return f"{p.family!r} among {p.n_parties} parties over Z_2^{p.ring_bits}"


def kernels_of(*values, op: str = "this operation") -> Family:
    """The family of the (common) protocol of the :class:`~jaxmpc.Shared` among ``values``."""
    return family(common_protocol(*values, op=op).family)
