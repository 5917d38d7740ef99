"""Core: the ring Z_2^64 (words, signed view, party sums), exact ring GEMMs, keys and streams, fixed-point encoding.

Nothing here knows about protocols; every folder above may import it."""
from . import fixedpoint, gemm, keys, ring
