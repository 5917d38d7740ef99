"""experiments/reliability.py with tiny settings (parts a, b, c), and its part d, determinism."""
import json


def _script():
    import reliability  # experiments/reliability.py (experiments/ is on sys.path: conftest.py)

    return reliability


def test_reliability_script_tiny(tmp_path):
    out = tmp_path / "rel.json"
    _script().main(["--parts", "a", "b", "c", "--trials", "2048", "--samples", "2048", "--iterations", "30",
                    "--seeds", "1", "--precisions", "4", "2", "--json", str(out)])
    data = json.loads(out.read_text())
    # (a) failures counted by the diagnostics (checked inside against the opened results) track
    # (|x| + 1) / 2^64: rare at 2^56, about 3/8 at 3 * 2^61; exact 95% intervals cover most rows
    rows = data["local_failure_rate"]["rows"]
    assert len(rows) == 8 and all(r["trials"] == 2048 for r in rows)
    assert rows[0]["failures"] < 40 and 600 < rows[-1]["failures"] < 940
    assert sum(r["formula_in_ci"] for r in rows) >= 6
    # (b) every truncation within its bound, none failed, unbiased within 5 standard errors
    for r in data["truncation_error"]["rows"]:
        assert r["within_bound"] and r["failures"] == 0, r["case"]
        assert abs(r["mean"]) < 5 * r["stderr"] + 1e-3, r["case"]
        assert abs(sum(r["histogram"]["fraction"]) - 1) < 1e-9
    # (c) precision 4 tracks plaintext over the first 20 iterations, with clean diagnostics
    seed4, seed2 = data["seed_task"]["precisions"]["4"], data["seed_task"]["precisions"]["2"]
    assert seed4["wraps"] == seed4["failures"] == seed2["wraps"] == seed2["failures"] == 0
    assert seed4["windows"][0]["max_abs_diff"] < 0.002
    assert seed2["windows"][0]["max_abs_diff"] > seed4["windows"][0]["max_abs_diff"]
    assert seed4["max_bits"] < 30 and seed2["max_bits"] < seed4["max_bits"]
    assert "sgd/truncate/dealer" in seed2["windows"][-1]["underflow"]
    assert seed4["diagnostics"]["calls"]["matmul"]["calls"] == 30 * 5  # 2 forward + 3 backward per step


def test_jit_and_no_jit_are_bit_identical():
    """Determinism: the same keys give bit-identical shares (and diagnostics) with and without jit, and
    from one call to the next (experiments/reliability.py, part d).

    The chain covers Beaver matmul with local truncation, Beaver mul with dealer truncation, the
    comparison circuit of ReLU (its Kogge-Stone levels run in an accounting.scan) and a public division.
    Everything in the ring is integer arithmetic, and the float64 GEMM of opened values
    (gemm.matmul_small) is exact, so nothing may depend on XLA's fusion or evaluation order.
    """
    res = _script().determinism(5)
    assert res["jit_vs_jit"] and res["jit_vs_no_jit"] and res["diagnostics_jit_vs_no_jit"], res
    assert res["other_key_differs"]  # the comparison can fail: the keys do matter
    assert res["diagnostics_clean"] and res["bits_compared"] == 4 * 4 * 2 * 64
    assert res["max_error"] < 1e-3  # and the chain computes relu((x w)^2 - 1) / 3
