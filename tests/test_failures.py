"""jaxmpc.tasks.failures and experiments/failure_map.py: measured catastrophic truncation failures
against the predicted rates."""
import json
import os
import subprocess
import sys

import jaxmpc
from jaxmpc.tasks import failures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRID = failures.cells([8, 16], [0, 40, 44])  # k = 8 .. 60 bits: pair / local fail at ~2^(k-64)


def test_measured_rates_match_the_predictions():
    for t in ("pair", "local", "dealer", "exact", "fixed-mask"):
        recs = failures.measure(jaxmpc.key(1), t, GRID, 1 << 12, batch=1 << 11)
        assert [(r["fractional_bits"], r["magnitude_bits"]) for r in recs] == [(8, 0), (8, 40), (8, 44),
                                                                               (16, 0)]
        assert all(r["trials"] == 1 << 12 and failures.consistent(r) for r in recs), (t, recs)
        high = recs[2]  # k = 60: rate about 0.75 / 16
        if t in failures.PREDICTED_WRAP:
            assert 0.03 < high["predicted_rate"] < 0.06 and high["failures"] > 50
        else:
            assert high["predicted_rate"] == 0 and high["failures"] == 0


def test_measured_rates_match_the_predictions_on_z2_32():
    """On Z_2^32 probabilistic truncation fails at the settings Falcon recommends: 12 to 13
    fractional bits, products of magnitude about 1 (k = 24 bits: a rate near 0.75 * 2^-8)."""
    grid = failures.cells([12], [0, 4], ring_bits=32)
    for t in ("pair", "dealer"):
        recs = failures.measure(jaxmpc.key(2), t, grid, 1 << 12, batch=1 << 11, ring_bits=32)
        assert [r["ring"] for r in recs] == [32, 32] and all(failures.consistent(r) for r in recs), recs
        if t == "pair":
            assert 0.002 < recs[0]["predicted_rate"] < 0.004 and recs[1]["failures"] > 100
        else:
            assert sum(r["failures"] for r in recs) == 0


def test_consistency_rejects_a_wrong_prediction():
    rec = {"trials": 4096, "failures": 190, "predicted_rate": 0.047}
    assert failures.consistent(rec)
    assert not failures.consistent({**rec, "predicted_rate": 0.0})  # a scheme claimed error-free
    assert not failures.consistent({**rec, "predicted_rate": 0.1})


def test_cells_respect_the_ring():
    assert all(c.input_bits <= 62 for c in failures.cells([8, 24], range(0, 64, 2)))
    assert failures.cells([24], [14, 16]) == [failures.Cell(24, 14)]


def test_script_writes_the_records(tmp_path):
    out = tmp_path / "fm.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "experiments", "failure_map.py"), "--trials", "512",
                           "--rings", "64", "--fractional-bits", "8", "--magnitude-bits", "0", "44",
                           "--truncations", "pair",
                           "dealer", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    fields = {"ring", "fractional_bits", "truncation", "magnitude_bits", "trials", "failures",
              "measured_rate", "predicted_rate"}
    assert len(data["records"]) == 4 and all(fields <= set(r) for r in data["records"])
    assert {r["truncation"] for r in data["records"]} == {"pair", "dealer"}


def test_truncation_accuracy_script(tmp_path):
    import truncation_accuracy  # experiments/ is on sys.path (tests/conftest.py)

    out = tmp_path / "ta.json"
    truncation_accuracy.main(["--truncations", "pair", "--bits", "10", "--seeds", "1", "--epochs", "1",
                              "--json", str(out)])
    (rec,) = json.loads(out.read_text())["records"]
    assert (rec["truncation"], rec["ring"], rec["fractional_bits"], rec["seeds"]) == ("pair", 64, 10, 1)
    assert 0.5 < rec["test_accuracy_mean"] <= 1 and 0.5 < rec["plaintext_test_accuracy_mean"] <= 1
