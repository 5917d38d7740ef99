"""Every exact ring-matmul method of :mod:`jaxmpc.core.gemm` on a few shapes, against a float32 GEMM.

For each shape ``(m, k, n)`` and each method exact on the backend (``gemm.methods()``) it draws
fresh uniform ``uint64`` operands (every bit random: the hardest case for the limb splits), checks
the product bit for bit against the reference, then times the jitted product (warm-up, median of
``--repeats`` runs, each ended by ``block_until_ready``). The reference is NumPy's ``uint64``
matmul (exact: it wraps mod 2^64) up to ``--numpy-max-macs`` multiply-adds, and the ``"xla"``
method beyond. The float32 twin (``jnp.matmul`` of float32 operands, JAX's default precision for
the backend) is timed in the same run, and the method :func:`jaxmpc.core.gemm.choose_method` picks is
marked ``*``. Use it to set the crossovers of ``choose_method`` on a new backend.

    .venv/bin/python experiments/bench_gemm.py --shapes 128,128,128 512,512,512 --json gemm.json
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxmpc.core import gemm  # noqa: E402


def median_seconds(fn, args, repeats):
    jax.block_until_ready(fn(*args))  # warm-up (and compile)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_shape(m, k, n, repeats, numpy_max_macs, rng):
    a = rng.integers(0, 2**64, (m, k), dtype=np.uint64, endpoint=False)
    b = rng.integers(0, 2**64, (k, n), dtype=np.uint64, endpoint=False)
    da, db = jnp.asarray(a), jnp.asarray(b)
    ref = np.matmul(a, b) if m * k * n <= numpy_max_macs else None
    plain = median_seconds(jax.jit(jnp.matmul), (da.astype(jnp.float32), db.astype(jnp.float32)), repeats)
    chosen = gemm.choose_method(m, k, n)
    out = []
    for method in gemm.methods():
        fn = jax.jit(lambda x, y, method=method: gemm.matmul(x, y, method=method))
        got = np.asarray(fn(da, db))
        if ref is None:
            ref = np.asarray(jax.jit(lambda x, y: gemm.matmul(x, y, method="xla"))(da, db))
        s = median_seconds(fn, (da, db), repeats)
        rec = {"m": m, "k": k, "n": n, "method": method, "chosen": method == chosen,
               "exact": bool(np.array_equal(got, ref)), "seconds": s, "float32_seconds": plain,
               "ratio": s / plain}
        print(f"{m:>5} {k:>5} {n:>5} {method + ('*' if rec['chosen'] else ''):>5} "
              f"{s * 1e3:>10.3f} {plain * 1e3:>10.3f} {s / plain:>8.1f}x  exact={rec['exact']}", flush=True)
        out.append(rec)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", nargs="+", default=["128,128,128", "128,784,128", "512,512,512",
                                                    "1024,1024,1024", "2048,2048,2048"],
                   help="m,k,n of each product")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--numpy-max-macs", type=int, default=1 << 28,
                   help="largest product checked against NumPy; larger ones against method 'xla'")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    shapes = []
    for s in args.shapes:
        try:
            m, k, n = (int(v) for v in s.split(","))
        except ValueError:
            p.error(f"--shapes: each shape is three comma-separated integers m,k,n, got {s!r}")
        shapes.append((m, k, n))
    print(f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}), jax {jax.__version__}")
    print(f"{'m':>5} {'k':>5} {'n':>5} {'meth':>5} {'ms':>10} {'f32 ms':>10} {'ratio':>9}")
    rng = np.random.default_rng(0)
    meta = {"backend": jax.default_backend(), "device": jax.devices()[0].device_kind,
            "jax": jax.__version__, "machine": platform.machine()}
    records = []
    for m, k, n in shapes:
        records += bench_shape(m, k, n, args.repeats, args.numpy_max_macs, rng)
        if args.json:  # rewritten after every shape: a run stopped early keeps what it measured
            with open(args.json, "w") as f:
                json.dump({**meta, "records": records}, f, indent=1)
    bad = [r for r in records if not r["exact"]]
    if bad:
        sys.exit(f"NOT EXACT: {[(r['m'], r['k'], r['n'], r['method']) for r in bad]}")


if __name__ == "__main__":
    main()
