"""The replicated family: 2-out-of-3 replicated secret sharing over Z_2^64 or Z_2^32 among 3
parties, honest majority, no dealer (ABY3 / Falcon style); :mod:`.family` registers its kernels."""
from . import prf, mult, truncation, binary, family
