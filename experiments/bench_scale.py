"""Throughput of a seed-task sweep against the number of devices (jaxmpc.mesh.shard_sweep).

For each device count D the sweep runs in a fresh subprocess (XLA_FLAGS must be set before JAX is
imported): on CPU it sees D forced host devices (``--xla_force_host_platform_device_count=D``); on
GPU it uses the first D GPUs. Every measurement is a precision x seed grid of ``--runs`` complete
seed-task runs (precisions cycled, one fresh key per run, never reused across repeats), its runs
split over the D devices, compiled once (compile time reported apart), then timed ``--repeats``
times (median, each ended by block_until_ready, results gathered to the host). Runs per second and
the speed-up over the smallest device count are printed and written as JSON.

Forced host devices share the machine's cores: on a CPU with C cores, more than C devices cannot
run faster, and XLA may already use several cores for one device; on a loaded machine more device
threads can also win a larger share of the cores from other processes. The JSON records the core
count and the CPU time of each sweep beside its wall time.

    .venv/bin/python experiments/bench_scale.py --device-counts 1 2 4 --runs 512 --out scale.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.join(_HERE, "..")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device-counts", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--runs", type=int, default=512, help="runs per sweep (padded to a multiple of D)")
    p.add_argument("--precisions", type=int, nargs="+", default=[2, 3, 4], help="base-10 precisions, cycled")
    p.add_argument("--iterations", type=int, default=20, help="training steps per run")
    p.add_argument("--parties", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5, help="timed sweeps per device count (median)")
    p.add_argument("--platform", default="cpu", choices=("cpu", "gpu", "default"),
                   help="cpu: forced host devices (default); gpu: the first D GPUs; default: JAX's choice")
    p.add_argument("--out", metavar="PATH", help="write the results as JSON")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)  # D, in a subprocess
    args = p.parse_args(argv)
    if min(args.device_counts) < 1 or args.runs < 1 or args.repeats < 1 or args.iterations < 1:
        p.error("device counts, --runs, --repeats and --iterations must be positive")
    return args


# ---- one device count, in its own process ---------------------------------------------------------
def worker(args) -> dict:
    """Time the sweep on the first ``args.worker`` devices (JAX imported here, after XLA_FLAGS)."""
    import functools

    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import jaxmpc  # the installed package (the worker's PYTHONPATH starts with this checkout)
    from jaxmpc import mesh
    from jaxmpc.tasks import tutorial

    n_dev = args.worker
    devices = jax.devices()
    if len(devices) < n_dev:
        raise SystemExit(f"{n_dev} devices requested, {len(devices)} visible ({devices[0].platform})")
    sweep = mesh.shard_sweep(functools.partial(tutorial.run, iterations=args.iterations, n_parties=args.parties),
                             mesh.sweep_mesh(devices[:n_dev]))
    n_runs = mesh.padded_runs(args.runs, n_dev)
    precisions = jnp.resize(jnp.asarray(args.precisions, jnp.int32), (n_runs,))
    root = jaxmpc.key(0)

    def inputs(r):  # fresh keys for every repeat: a key is never used twice
        return sweep.prepare(jax.random.split(jax.random.fold_in(root, r), n_runs), precisions)

    t0 = time.perf_counter()
    fn, placed, _ = inputs(0)
    compiled = fn.lower(*placed).compile()
    t_compile = time.perf_counter() - t0
    mesh.gather(compiled(*placed))  # warm-up
    times, cpu = [], []
    for r in range(1, args.repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        _, placed, _ = inputs(r)
        losses = mesh.gather(compiled(*placed))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    assert losses.shape == (n_runs, args.iterations)
    med = statistics.median(times)
    return {"devices": n_dev, "platform": devices[0].platform, "device_kind": devices[0].device_kind,
            "runs": n_runs, "seconds_median": med, "seconds_all": times,
            "runs_per_second": n_runs / med, "compile_seconds": t_compile,
            "cpu_seconds_median": statistics.median(cpu),  # CPU time of all threads: shows core use
            "final_loss_mean": float(losses[:, -1].mean())}


def _worker_env(n_dev: int, plat: str) -> dict:
    env = dict(os.environ)
    flags = re.sub(r"--xla_force_host_platform_device_count=\S+", "", env.get("XLA_FLAGS", "")).strip()
    if plat == "cpu":
        flags = f"{flags} --xla_force_host_platform_device_count={n_dev}".strip()
        env["JAX_PLATFORMS"] = "cpu"
    elif plat == "gpu":
        env["JAX_PLATFORMS"] = "cuda"
    env["XLA_FLAGS"] = flags
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, env.get("PYTHONPATH")]))
    return env


def run_count(args, n_dev: int) -> dict:
    """Run :func:`worker` for ``n_dev`` devices in a subprocess; returns its record."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(n_dev),
           "--runs", str(args.runs), "--iterations", str(args.iterations), "--parties", str(args.parties),
           "--repeats", str(args.repeats), "--precisions", *map(str, args.precisions)]
    proc = subprocess.run(cmd, env=_worker_env(n_dev, args.platform), capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"worker for {n_dev} device(s) failed (exit {proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None):
    args = parse_args(argv)
    if args.worker is not None:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return None
    print(f"seed-task sweep of {args.runs} runs ({args.iterations} steps, {args.parties} parties, "
          f"precisions {args.precisions}), median of {args.repeats}; {os.cpu_count()} CPU cores")
    print(f"{'devices':>7} {'runs':>6} {'median s':>9} {'runs/s':>9} {'speed-up':>9} {'CPU s':>7} "
          f"{'compile s':>10}")
    records = []
    for n_dev in args.device_counts:
        rec = run_count(args, n_dev)
        records.append(rec)
        rec["speedup"] = rec["runs_per_second"] / records[0]["runs_per_second"]
        print(f"{n_dev:>7} {rec['runs']:>6} {rec['seconds_median']:>9.3f} {rec['runs_per_second']:>9.1f} "
              f"{rec['speedup']:>8.2f}x {rec['cpu_seconds_median']:>7.3f} {rec['compile_seconds']:>10.1f}",
              flush=True)
    result = {"task": "seed", "config": {k: v for k, v in vars(args).items() if k not in ("out", "worker")},
              "cpu_count": os.cpu_count(), "machine": platform.platform(),
              "speedup_baseline_devices": args.device_counts[0], "results": records,
              "note": "forced host devices share the machine's cores; no speed-up beyond the core count"
                      if args.platform == "cpu" else None}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
