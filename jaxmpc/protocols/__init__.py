"""Protocols: the shared value (shares, encoding and protocol) and the families that implement the kernels."""
from . import additive, shared
