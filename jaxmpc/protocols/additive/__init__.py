"""The additive family: n-party additive shares over Z_2^64 with a trusted dealer (Beaver triples,
truncation pairs, binary triples); :mod:`.family` registers its kernels."""
from . import beaver, binary, dealer, family, truncation
