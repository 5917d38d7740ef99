"""Test configuration: 64-bit types, strict dtype and rank promotion, and JAX's key-reuse checker;
``experiments/`` on ``sys.path``; JAX's caches of compiled programs cleared after each test module.

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
