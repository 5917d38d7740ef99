"""jaxmpc: a vectorised simulator of secure multi-party computation in JAX.

One process holds every party's shares (a leading party axis) and the dealer's key: it models what
each party computes, sees and sends, so accuracy and cost can be measured. It is not a deployment.

The package is layered; a folder imports only from the folders listed before it:
:mod:`~jaxmpc.core` (ring, GEMMs, keys, fixed point), :mod:`~jaxmpc.trace` (cost accounting,
diagnostics), :mod:`~jaxmpc.protocols` (the shared value and the protocol families),
:mod:`~jaxmpc.ops` (comparison, approximations), :mod:`~jaxmpc.nn` (layers, losses, optimizers,
training, inference), :mod:`~jaxmpc.run` (configuration, lanes, mesh, batching) and
:mod:`~jaxmpc.tasks` (the tutorial task, data sets). The functions below are the public API; the
folders are public too, and ``diagnostics``, ``lanes``, ``mesh`` and ``config`` are also reachable
from the top level, being tools a user calls by name.
"""
from . import core, nn, ops, protocols, run, tasks, trace
from .core.fixedpoint import FixedPoint
from .core.keys import key
from .errors import (BatchingRuleError, DeviceMeshError, EncodingError, InputTypeError, JaxMPCError,
                     ProtocolError, ShareMismatchError, UnknownNameError, X64Error)
from .ops.approx import (cos, divide, erf, exp, exp2, gelu, log, log1p, log2, log_softmax, reciprocal,
                         rsqrt, sigmoid, sin, softmax, sqrt, tanh)
from .ops.compare import (abs, clamp, equal, greater, hardtanh, less, maximum, minimum, msb,  # noqa: A004
                          not_equal, relu, sign, where)
from .protocols.additive.beaver import beaver
from .protocols.additive.truncation import truncate_shares
from .protocols.arith import (conv2d, div_public, matmul, mul, mul_public, square_sum,
                              truncate)
from .protocols.shared import Shared, concatenate, reveal, share
from .run import config, lanes, mesh
from .run.batching import vmap
from .trace import diagnostics
from .trace.accounting import LAN, WAN, CostReport, NetworkModel, cost

__all__ = [
    "BatchingRuleError", "CostReport", "DeviceMeshError", "EncodingError", "FixedPoint", "InputTypeError",
    "JaxMPCError", "LAN", "NetworkModel", "ProtocolError", "ShareMismatchError", "Shared",
    "UnknownNameError", "WAN", "X64Error", "abs", "beaver", "clamp", "concatenate", "config", "conv2d", "cos",
    "core", "cost", "diagnostics", "div_public", "divide", "equal", "erf", "exp", "exp2", "gelu",
    "greater", "hardtanh", "key", "lanes", "less", "log", "log1p", "log2", "log_softmax", "matmul",
    "maximum", "mesh", "minimum", "msb", "mul", "mul_public", "nn", "not_equal", "ops", "protocols",
    "reciprocal", "relu", "reveal", "rsqrt", "run", "share", "sigmoid", "sign", "sin", "softmax", "sqrt",
    "square_sum", "tanh", "tasks", "trace", "truncate", "truncate_shares", "vmap", "where",
]
