"""Run configuration: checks of the static protocol options, and JAX's compilation cache.

Research scripts call :func:`check` on their options so that a bad combination fails at once with
the same message the protocols would raise later, and :func:`compilation_cache` so that a second
run of the same program loads its compiled code instead of compiling it again.
"""
from __future__ import annotations

import os

import jax
import numpy as np

from .errors import InputTypeError
from .fixedpoint import FixedPoint
from .truncation import check_method


def check(*, n_parties, truncation: str = "dealer", base: int = 10, precisions=()) -> None:
    """Raise a :class:`jaxmpc.JaxMPCError` unless the configuration is valid.

    Args:
        n_parties: an int >= 2.
        truncation: ``"dealer"`` (any party count) or ``"local"`` (2 parties only).
        base: 2 or 10.
        precisions: the precisions that will be used (each must fit the ring for ``base``).

    Example:
        >>> import jax; jax.config.update("jax_enable_x64", True)
        >>> check(n_parties=3, truncation="dealer", base=2, precisions=[12, 16])
    """
    if isinstance(n_parties, bool) or not isinstance(n_parties, (int, np.integer)) or n_parties < 2:
        raise InputTypeError(f"n_parties must be an int >= 2, got {n_parties!r}.")
    check_method(truncation, int(n_parties))
    for p in precisions:
        FixedPoint(base, p)  # raises with the allowed range for this base


def compilation_cache(directory: str | None = None, *, min_compile_seconds: float = 0.5) -> str:
    """Turn on JAX's persistent compilation cache: compiled programs are saved on disk and reused
    by later processes that compile the same program (same JAX version, backend and flags).

    Args:
        directory: where to keep it; default ``$JAXMPC_CACHE_DIR``, else ``~/.cache/jaxmpc/xla``.
        min_compile_seconds: only programs that took at least this long to compile are saved.
    Returns:
        The directory used.

    The first run still compiles (and reports real compile times); repeated runs of an experiment
    with the same shapes and static options start in a fraction of the time.
    """
    directory = directory or os.environ.get("JAXMPC_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "jaxmpc", "xla")
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    return directory

