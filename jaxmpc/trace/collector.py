"""The collection mechanism shared by the trace-time tools (cost accounting and diagnostics).

A :class:`Channel` is a stack of active collectors of one tool. The protocols call the tool's hooks
(:func:`jaxmpc.trace.accounting.record`, the ``observe_*`` functions of
:mod:`jaxmpc.trace.diagnostics`); a hook reaches the collectors on its channel, and returns at once
when the channel is empty, so that outside a collection nothing is traced and jaxprs are unchanged.

Caching. JAX caches the traces of ``jax.jit``-ed functions and a cache hit does not run their Python
code again, so their hooks would not be called. While a channel collects, a
:func:`jax.make_user_context` value, which is part of JAX's trace-cache key, is set to a fresh token
(:meth:`Channel.collecting`), and :meth:`Channel.refresh` sets a new one after an observation, so
every jitted function that reports is traced again, each time it is called. The caches of calls
made outside a collection are untouched. Both tools set the same context; each token is new, so a
collection nested in another (diagnostics inside :func:`jaxmpc.cost`) still misses every cache.

:func:`table` lays out the text tables of both reports: a header, a rule, one row per operation, a
rule and the total.
"""
from __future__ import annotations

import contextlib
import itertools
from typing import Any, Sequence

import jax

_CACHE_KEY = jax.make_user_context(None)  # part of JAX's trace-cache key
_TOKENS = itertools.count(1)


class Channel:
    """The active collectors of one tool, innermost last.

    ``channel.active`` is the stack; ``bool(channel)`` says whether anything collects;
    ``channel.top`` is the innermost collector (where an observation goes).
    """

    def __init__(self, name: str):
        self.name = name
        self.active: list[Any] = []

    def __bool__(self) -> bool:
        return bool(self.active)

    @property
    def top(self):
        return self.active[-1]

    def _token(self):
        return (f"jaxmpc.trace.{self.name}", next(_TOKENS))

    @contextlib.contextmanager
    def collecting(self, collector, *, fresh_caches: bool = True):
        """Push ``collector`` while the block runs; with ``fresh_caches`` every jit cache misses
        inside (see "Caching"). Yields the collector."""
        self.active.append(collector)
        try:
            with _CACHE_KEY(self._token()) if fresh_caches else contextlib.nullcontext():
                yield collector
        finally:
            self.active.remove(collector)

    @contextlib.contextmanager
    def isolated(self, collector):
        """Only ``collector`` collects inside the block (the enclosing ones see nothing of it)."""
        saved = list(self.active)
        self.active[:] = [collector]
        try:
            yield collector
        finally:
            self.active[:] = saved

    def refresh(self) -> None:
        """A new trace-cache token until the enclosing :meth:`collecting` block ends (so that a
        jitted function that just reported is traced again when it is called again)."""
        _CACHE_KEY(self._token()).__enter__()


def table(head: Sequence[str], rows: Sequence[Sequence[str]], total: Sequence[str], *,
          empty: str) -> list[str]:
    """Aligned text lines: ``head``, a rule, ``rows`` (or ``empty`` when there are none), a rule,
    ``total``. The first column is left-aligned, the others right-aligned."""
    cells = [tuple(head)] + [tuple(r) for r in rows] + [tuple(total)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]

    def line(c):
        return "  ".join(c[0].ljust(widths[0]) if i == 0 else c[i].rjust(widths[i])
                         for i in range(len(head)))

    rule = "-" * len(line(cells[0]))
    body = [line(c) for c in cells[1:-1]] or [empty]
    return [line(cells[0]), rule, *body, rule, line(cells[-1])]
