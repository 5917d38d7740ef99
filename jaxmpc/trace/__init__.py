"""Trace-time tools: cost accounting (rounds, bytes) and simulator-only diagnostics (wraps, failures).

Both observe a program while it is traced; neither changes a share."""
from . import accounting, diagnostics
