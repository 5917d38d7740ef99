"""Determinism: the same keys give bit-identical shares (and diagnostics) with and without jit, and
from one call to the next (experiments/reliability.py, part d).

The chain covers Beaver matmul with local truncation, Beaver mul with dealer truncation, the
comparison circuit of ReLU (its Kogge-Stone levels run in an accounting.scan) and a public division.
Everything in the ring is integer arithmetic, and the float64 GEMM of opened values
(gemm.matmul_small) is exact, so nothing may depend on XLA's fusion or evaluation order.
"""
import importlib.util
import os
import sys

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "experiments", "reliability.py")


def _script():
    name = "jaxmpc_experiments_reliability"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, PATH)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def test_jit_and_no_jit_are_bit_identical():
    res = _script().determinism(5)
    assert res["jit_vs_jit"] and res["jit_vs_no_jit"] and res["diagnostics_jit_vs_no_jit"], res
    assert res["other_key_differs"]  # the comparison can fail: the keys do matter
    assert res["diagnostics_clean"] and res["bits_compared"] == 4 * 4 * 2 * 64
    assert res["max_error"] < 1e-3  # and the chain computes relu((x w)^2 - 1) / 3
