"""Runners: XLA / cache configuration, lanes (a batch of runs in one program), a device mesh, batching shared values."""
from . import batching, config, lanes, mesh
