"""Run configuration: checks of the static protocol options, XLA's options, JAX's compilation cache.

Research scripts call :func:`check` on their options so that a bad combination fails at once with
the same message the protocols would raise later, compile with :func:`jit` (``jax.jit`` with the
XLA options of :func:`compiler_options`), and call :func:`compilation_cache` so that a second run
of the same program loads its compiled code instead of compiling it again.
"""
from __future__ import annotations

import os
import warnings

import jax
import jax.numpy as jnp

from ..errors import InputTypeError
from ..core.fixedpoint import FixedPoint
from ..protocols import interface


def check(*, n_parties, truncation: str = "default", base: int = 10, precisions=(),
          protocol: str = "additive", ring: int = 64) -> None:
    """Raise a :class:`jaxmpc.JaxMPCError` unless the configuration is valid.

    Args:
        n_parties: an int >= 2 that the protocol supports.
        truncation: a truncation option of the protocol at ``n_parties`` (additive: ``"dealer"``,
            ``"pair"``, ``"fixed-mask"`` and ``"exact"`` at any party count, ``"local"`` at 2;
            replicated: ``"share"``), or ``"default"``, the family's default.
        base: 2 or 10.
        precisions: the precisions that will be used (each must fit the ring's headroom for
            ``base``: :func:`jaxmpc.core.fixedpoint.max_precision`).
        protocol, ring: the protocol family's name and the ring width in bits, as
            :func:`jaxmpc.share` takes them.

    Example:
        >>> import jax; jax.config.update("jax_enable_x64", True)
        >>> check(n_parties=3, truncation="dealer", base=2, precisions=[12, 16])
    """
    proto = interface.protocol(protocol, n_parties, ring)
    interface.family(proto.family).truncation_for(truncation, proto.n_parties)
    for p in precisions:
        FixedPoint(base, p).on_ring(proto.ring_bits)  # raises with the allowed range for this ring


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


# XLA options per backend (see compiler_options); checked once per backend, then cached.
RECOMMENDED_OPTIONS = {"cpu": {"xla_cpu_use_fusion_emitters": False}}
_accepted: dict = {}


def compiler_options(backend: str | None = None) -> dict:
    r"""The XLA compiler options jaxmpc compiles its programs with on ``backend`` (default: JAX's).

    A jaxmpc program is a long chain of small integer kernels: uint64 shares of a few elements per
    party in a training step, stacked by ``vmap`` over hundreds of configurations in a sweep. On
    the CPU, XLA's older loop emitters (``xla_cpu_use_fusion_emitters=False``) compile such kernels
    faster than its MLIR fusion emitters and run them as fast or faster (measured on the seed
    task, the vmapped seed sweep and the MNIST-size training step); the results are bit-identical
    (integer arithmetic; ``tests/test_config.py`` checks it). ``experiments/bench.py
    --xla-options default`` compiles with JAX's defaults instead, for a comparison on the machine
    at hand (``docs/performance.md`` records a run with these options only).

    Plaintext float32 JAX does not gain, which is why these are per-compilation options
    (``jax.jit(..., compiler_options=...)``), not a process-wide ``XLA_FLAGS``. Other backends get
    ``{}``.

    An XLA that does not know an option refuses to compile, so the options are tried once per
    backend on a trivial program; if they are refused (another JAX version), this returns ``{}``
    and warns once.

    Example:
        >>> import jax; jax.config.update("jax_enable_x64", True)
        >>> compiler_options("gpu")
        {}
    """
    backend = jax.default_backend() if backend is None else backend
    if not isinstance(backend, str):
        raise InputTypeError(f"compiler_options: backend must be a platform name such as 'cpu' or "
                             f"'gpu', or None for JAX's default, got {backend!r}.")
    options = RECOMMENDED_OPTIONS.get(backend, {})
    if not options:
        return {}
    key = (backend, tuple(sorted(options.items())))
    if key not in _accepted:
        try:  # a trivial program for the backend's first device (abstract input: works while tracing)
            device = jax.sharding.SingleDeviceSharding(jax.local_devices(backend=backend)[0])
            probe = jax.ShapeDtypeStruct((), jnp.int32, sharding=device)
            jax.jit(lambda v: v + 1, compiler_options=options).lower(probe).compile()
            _accepted[key] = True
        except Exception as e:  # an option this XLA does not have: JAX's defaults instead
            _accepted[key] = False
            warnings.warn(f"jaxmpc.run.config: a trivial program on {backend!r} did not compile with "
                          f"{options} ({str(e).splitlines()[0]}); compiling with JAX's defaults.",
                          RuntimeWarning, stacklevel=2)
    return dict(options) if _accepted[key] else {}


def jit(fn, **jit_kwargs):
    """``jax.jit(fn, **jit_kwargs)`` with jaxmpc's :func:`compiler_options` for the default backend
    (options given in ``jit_kwargs["compiler_options"]`` take precedence).

    Example:
        >>> import jax; jax.config.update("jax_enable_x64", True)
        >>> import jaxmpc
        >>> f = jit(lambda key, v: jaxmpc.reveal(jaxmpc.share(key, v, jaxmpc.FixedPoint(10, 3))))
        >>> f(jaxmpc.key(0), 1.5).tolist()
        1.5
    """
    options = {**compiler_options(), **(jit_kwargs.pop("compiler_options", None) or {})}
    return jax.jit(fn, compiler_options=options or None, **jit_kwargs)
