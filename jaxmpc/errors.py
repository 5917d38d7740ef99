"""Exceptions raised by jaxmpc; every message says what was expected, what came, and how to fix it."""


class JaxMPCError(Exception):
    """Base class of every error jaxmpc raises on bad input."""


class EncodingError(JaxMPCError, ValueError):
    """A value or precision that the fixed-point encoding cannot represent (NaN, inf, too large)."""


class ShareMismatchError(JaxMPCError, ValueError):
    """Operands with different party counts, encodings or incompatible shapes."""


class ProtocolError(JaxMPCError, ValueError):
    """A protocol option that is invalid here (e.g. local truncation with more than 2 parties), or an
    option's value outside the range that works (an unknown mode, a count or rate out of range)."""


class InputTypeError(JaxMPCError, TypeError):
    """An argument of the wrong type or dtype (e.g. a string array, a boolean array, a bad key)."""


class X64Error(JaxMPCError, RuntimeError):
    """64-bit types are disabled in JAX, so uint64 would silently become uint32."""


class DeviceMeshError(JaxMPCError, ValueError):
    """A device placement that cannot work (fewer devices than parties, a mesh of the wrong shape)."""


class UnknownNameError(JaxMPCError, KeyError):
    """A name looked up that is not there (e.g. an operation a diagnostics report did not observe)."""

    __str__ = Exception.__str__  # the message as written, not KeyError's repr of it


class BatchingRuleError(JaxMPCError, RuntimeError):
    """A batching rule of :func:`jaxmpc.lanes.vmap` gave a result of another shape than the traced
    program's (a bug in that rule, caught while tracing instead of computing something else)."""
