"""Trace-time tools: cost accounting (rounds, bytes) and simulator-only diagnostics (wraps, failures).

Both observe a program while it is traced, through one collection mechanism
(:mod:`jaxmpc.trace.collector`); neither changes a share."""
from . import accounting, collector, diagnostics  # noqa: F401
