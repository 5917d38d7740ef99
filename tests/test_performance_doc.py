"""experiments/performance.py: docs/performance.md from bench.py's JSON (formatting only, no timing).

The generator runs as a script (``sys.executable``, as a user would run it) on a small synthetic
JSON; nothing here asserts on wall time. The committed page is checked against the committed JSON,
so a hand edit of docs/performance.md (or a JSON refreshed without the page) fails here.
"""
import ast
import importlib
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "experiments", "performance.py")

MACHINE = {"jax": "0.0.test", "jaxlib": "0.0.test", "backend": "cpu", "device": "cpu",
           "device_count": 1, "cpus": 2, "cpu_model": "Test CPU", "machine": "x86_64",
           "platform": "Linux-test", "python": "3.11.0", "date": "2000-01-02T03:04:05+00:00",
           "load_average_start": [1.5, 1.25, 1.0], "load_average_end": [2.0, 1.5, 1.25],
           "command": "python experiments/bench.py --json bench.json", "commit": "abc1234",
           "compiler_options": {"xla_cpu_use_fusion_emitters": False}, "repeats": 10,
           "default_repeats": 10, "only": None}
BENCHMARKS = [
    {"name": "seed_20", "mode": "protocol", "seconds": 3.85e-4, "plaintext_seconds": 1.04e-5,
     "ratio": 3.85e-4 / 1.04e-5, "compile_seconds": 7.75},
    {"name": "seed_sweep_256_lanes", "mode": "protocol", "seconds": 6.7e-3, "plaintext_seconds": 3.2e-4,
     "ratio": 6.7e-3 / 3.2e-4, "compile_seconds": 11.5, "vmap": "jaxmpc.lanes.vmap", "one_by_one_seconds": 0.058,
     "sweep_over_one_by_one": 0.1155},
    {"name": "matmul_512", "mode": "protocol", "seconds": 0.0166, "plaintext_seconds": 0.0026,
     "ratio": 0.0166 / 0.0026, "compile_seconds": 0.73},
    {"name": "matmul_512", "mode": "ideal", "seconds": 0.0263, "plaintext_seconds": 0.00355,
     "ratio": 0.0263 / 0.00355, "compile_seconds": 0.66},
    {"name": "a_new_case", "mode": "protocol", "seconds": 1.0, "plaintext_seconds": 0.5,
     "ratio": 2.0, "compile_seconds": 1.0},
]


def _generate(tmp_path, data, *extra):
    src, out = tmp_path / "bench.json", tmp_path / "performance.md"
    src.write_text(json.dumps(data))
    proc = subprocess.run([sys.executable, SCRIPT, "--json", str(src), "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=120)
    return proc, out


def test_generator_writes_header_and_a_table_per_case(tmp_path):
    proc, out = _generate(tmp_path, {"machine": MACHINE, "benchmarks": BENCHMARKS})
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    # the header: command, date, machine, software, load
    assert "`python experiments/bench.py --json bench.json` (commit abc1234)" in page
    assert "2000-01-02T03:04:05+00:00" in page
    assert "Linux-test, x86_64, 2 CPUs (Test CPU)" in page
    assert "JAX 0.0.test, jaxlib 0.0.test" in page
    assert "1.50 / 1.25 / 1.00 at the start, 2.00 / 1.50 / 1.25 at the end" in page
    assert "full set of cases" in page and "Loaded:" not in page  # load 2.0 on 2 CPUs: not over
    # how to regenerate it, with the real commands
    assert ("`.venv/bin/python experiments/bench.py --json docs/performance.json`, then "
            "`.venv/bin/python experiments/performance.py`") in page
    # one table per case, a row per mode; jaxmpc ms, plaintext ms, ratio, compile s
    assert page.count("## `matmul_512`") == 1 and page.count("## `") == 4
    assert "| protocol | 16.6 | 2.60 | 6.4x | 0.73 |" in page
    assert "| ideal | 26.3 | 3.55 | 7.4x | 0.66 |" in page
    assert "| protocol | 6.70 | 0.320 | 20.9x | 11.50 | 58.0 | 0.116 |" in page
    assert "| protocol | 0.385 | 0.0104 | 37.0x | 7.75 |" in page
    assert "| protocol | 1000 | 500 | 2.0x | 1.00 |" in page  # unknown cases still get their table
    # --check: up to date now, stale after an edit
    assert subprocess.run([sys.executable, SCRIPT, "--json", str(tmp_path / "bench.json"), "--out",
                           str(out), "--check"], capture_output=True, timeout=120).returncode == 0
    out.write_text(page.replace("6.4x", "6.5x"))
    stale = subprocess.run([sys.executable, SCRIPT, "--json", str(tmp_path / "bench.json"), "--out",
                            str(out), "--check"], capture_output=True, text=True, timeout=120)
    assert stale.returncode == 1 and "is not the rendering of" in stale.stderr


def test_generator_says_when_the_run_was_reduced_and_tolerates_missing_fields(tmp_path):
    machine = {"jax": "0.0.test", "cpus": 2, "command": "python experiments/bench.py --repeats 3 --only seed_20",
               "repeats": 3, "default_repeats": 10, "only": ["seed_20"]}  # no load, date, platform
    proc, out = _generate(tmp_path, {"machine": machine, "benchmarks": BENCHMARKS[:1]})
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert "reduced run (only `seed_20`; 3 repeats per timing instead of bench.py's default 10)" in page
    assert "Load average (1 / 5 / 15 min): unknown at the start, unknown at the end" in page
    machine["load_average_end"] = [4.5, 3.0, 2.0]
    proc, out = _generate(tmp_path, {"machine": machine, "benchmarks": BENCHMARKS[:1]})
    assert "the 1-minute load (4.50 at most) exceeded the 2 CPUs" in out.read_text()


def test_generator_refuses_other_json(tmp_path):
    proc, out = _generate(tmp_path, [1, 2, 3])
    assert proc.returncode != 0 and "experiments/bench.py --json" in proc.stderr and not out.exists()


def test_generator_refuses_a_ratio_that_is_not_the_quotient_of_its_times(tmp_path):
    bad = dict(BENCHMARKS[2], ratio=5.0)  # 16.6 ms over 2.60 ms is 6.4, not 5.0
    proc, out = _generate(tmp_path, {"machine": MACHINE, "benchmarks": [bad]})
    assert proc.returncode != 0 and "seconds / plaintext_seconds" in proc.stderr and not out.exists()


def test_committed_page_matches_committed_json():
    # the defaults: --json docs/performance.json, --out docs/performance.md
    proc = subprocess.run([sys.executable, SCRIPT, "--check"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with open(os.path.join(ROOT, "docs", "performance.json")) as f:
        machine = json.load(f)["machine"]
    page = open(os.path.join(ROOT, "docs", "performance.md")).read()
    # the context every figure needs: device, load average, date and jax version of the run
    for key in ("device", "load_average_start", "load_average_end", "date", "jax"):
        assert machine.get(key) is not None, key
    assert f"device {machine['device']}" in page and machine["date"] in page
    assert " / ".join(f"{v:.2f}" for v in machine["load_average_start"]) in page


# times (300 ms, 1.9 s), speed-ups (3x faster, 12x a float32 GEMM, wins 1.3x, up to 3x), percentages
TIMING = re.compile(r"\d(\.\d+)?\s*(ms|us|µs|ns)\b|\d(\.\d+)?\s*s\b(?!\w)|\btook \d"
                    r"|\d(\.\d+)?x (a |an |the )?(faster|slower|float|GEMM)"
                    r"|\b(up to|about|wins|loses|by) \d+(\.\d+)?x\b|\d+(\.\d+)?\s*% (faster|slower|shorter|longer)")


def test_no_timing_figures_in_docstrings():
    # figures go stale: they live in docs/performance.md, with their machine, date and load
    found = []
    for folder, _, files in os.walk(os.path.join(ROOT, "jaxmpc")):
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, name)
            with open(path) as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    doc = ast.get_docstring(node) or ""
                    found += [f"{os.path.relpath(path, ROOT)}: {getattr(node, 'name', '<module>')}: "
                              f"{m.group(0)!r}" for m in TIMING.finditer(doc)]
    assert not found, "timing figures in docstrings (move them to docs/performance.md):\n" + "\n".join(found)


def _load(name):
    """The script experiments/<name>.py as a module (experiments/ is on sys.path: conftest.py)."""
    return importlib.import_module(name)


def test_bench_machine_record_has_what_the_page_header_reads():
    # bench.py's record of the run (no benchmark is run): device, load average, date, versions
    rec = _load("bench").machine_record(["--json", "docs/performance.json"])
    assert rec["command"] == "python experiments/bench.py --json docs/performance.json"
    for key in ("jax", "jaxlib", "backend", "device", "cpus", "date", "python", "platform"):
        assert rec[key], key
    assert rec["load_average_start"] is None or len(rec["load_average_start"]) == 3
    rec.update(load_average_end=rec["load_average_start"], repeats=10, default_repeats=10, only=None,
               compiler_options={})
    page = _load("performance").render({"machine": rec, "benchmarks": []})
    assert f"device {rec['device']}" in page and rec["date"] in page and f"JAX {rec['jax']}," in page
