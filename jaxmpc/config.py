"""Checks of the static protocol configuration (what changes the program), before any work.

Research scripts call :func:`check` on their options so that a bad combination fails at once with
the same message the protocols would raise later.
"""
from __future__ import annotations

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
