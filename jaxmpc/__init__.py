"""jaxmpc: a vectorised simulator of secure multi-party computation in JAX.

One process holds every party's shares (a leading party axis) and the dealer's key: it models what
each party computes, sees and sends, so accuracy and cost can be measured. It is not a deployment.
"""
from . import accounting, config, dealer, ring
from . import data, inference, losses, nn, optim, seed, train
from .beaver import beaver, div_public, matmul, mul, mul_public, square_sum
from .errors import (EncodingError, InputTypeError, JaxMPCError, ProtocolError, ShareMismatchError,
                     X64Error)
from .fixedpoint import FixedPoint
from .keys import key
from .shared import Shared, concatenate, reveal, share
from .truncation import truncate_shares
from .compare import greater, less, maximum, msb, relu, sign, where
from .accounting import LAN, WAN, CostReport, NetworkModel, cost

__all__ = [
    "key", "FixedPoint", "Shared", "share", "reveal", "concatenate", "mul", "matmul", "mul_public",
    "div_public", "square_sum", "beaver", "truncate_shares",
    "nn", "losses", "optim", "train", "seed", "data", "inference", "accounting", "config", "dealer", "ring",
    "cost", "CostReport", "NetworkModel", "LAN", "WAN",
    "JaxMPCError", "EncodingError", "InputTypeError", "ProtocolError", "ShareMismatchError", "X64Error",
]
__all__ += ["msb", "relu", "less", "greater", "sign", "maximum", "where"]
from . import approx
from .approx import exp, log, reciprocal, rsqrt, sigmoid, softmax, tanh
__all__ += ["approx", "exp", "log", "reciprocal", "rsqrt", "sigmoid", "softmax", "tanh"]
from .approx import divide
__all__ += ["divide"]
from . import diagnostics, lanes, mesh
from .errors import DeviceMeshError
__all__ += ["diagnostics", "lanes", "mesh", "DeviceMeshError"]
from . import conv
__all__ += ["conv"]
from . import batching
from .batching import vmap
__all__ += ["batching", "vmap"]
