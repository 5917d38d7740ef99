"""Test configuration: 64-bit types, strict dtype and rank promotion, and JAX's key-reuse checker;
``experiments/`` on ``sys.path``; JAX's caches of compiled programs cleared after each test module,
and after any test that leaves the process near its limit of memory mappings.

The key-reuse checker makes any reuse of a PRNG key (a reused mask or triple: a security bug) fail.
The scripts in ``experiments/`` import their sibling module ``common`` (a script's folder is first on
``sys.path`` when it runs), so the tests that call a script's ``main`` put that folder on the path
(last: a script never shadows an installed module) and import the script by its name.
"""
import os
import sys

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_debug_key_reuse", True)

EXPERIMENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments")
if EXPERIMENTS not in sys.path:
    sys.path.append(EXPERIMENTS)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Clear JAX's caches of compiled programs after each test module.

    Each compiled XLA CPU program keeps a few memory mappings per kernel (the large layer programs
    of ``tests/test_conv.py`` about 1,600), and a process may hold at most ``vm.max_map_count``
    (65,530 by default on Linux) of them: a worker that ran half the suite aborted inside XLA's
    compiler when it ran out. Functions shared within a module keep their compiled code for the
    module; a later module that calls one compiles it again.
    """
    yield
    jax.clear_caches()


MAPS_FILE = "/proc/self/maps"
MAPS_HEADROOM = 0.5  # clear once a worker holds half of vm.max_map_count


def _maps_limit():
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


MAPS_LIMIT = _maps_limit()


@pytest.fixture(autouse=True)
def _release_when_near_map_limit():
    """Clear JAX's caches after a test that leaves this worker holding more than
    :data:`MAPS_HEADROOM` of ``vm.max_map_count`` memory mappings (Linux only): one heavy module
    (``tests/test_conv.py``) reached 56,000 of the 65,530 before its module-end clearing."""
    yield
    if MAPS_LIMIT is None:
        return
    with open(MAPS_FILE, "rb") as f:
        held = sum(1 for _ in f)
    if held > MAPS_HEADROOM * MAPS_LIMIT:
        jax.clear_caches()
