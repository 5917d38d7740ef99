"""Protocols: the interface every family implements, the shared value (shares, encoding and
protocol), the products written once against the kernels, and the families."""
from . import interface, shared, arith, additive, replicated
