"""Core-engine benchmark: 2-party protocols against plaintext float32 JAX, measured in the same run.

Each protocol record times ONE jit-compiled call on inputs that are already shared, so it includes
everything the protocol does per call: the dealer's randomness (Beaver triple, truncation material),
the simulated openings and the truncation. The plaintext twin is the same maths in float32 JAX
(``x * y``, ``x @ y``, ``jax.nn.relu``, ``lax.conv_general_dilated``), also jitted. Protocol:

1. compile explicitly (``jit(f).lower(*args).compile()``) and record the compile seconds
   (JAX's persistent compilation cache is not enabled, so the number is a real compilation); the
   protocol with jaxmpc's XLA options (``jaxmpc.config.compiler_options``), the plaintext twin with
   JAX's defaults (the options do not help float32 code);
2. one warm-up call;
3. ``--repeats`` timed calls (fresh key each call), each ended by ``block_until_ready``; report the
   median. Cases whose first call takes over ``--slow`` seconds use ``--slow-repeats`` calls
   instead (the record says how many runs it used).

    .venv/bin/python experiments/bench_core.py                         # mul 1M, matmul 128/512/1024, relu 1M, conv
    .venv/bin/python experiments/bench_core.py --sizes 128,256 --repeats 20 --json bench_core.json
    .venv/bin/python experiments/bench_core.py --prng threefry         # JAX's default PRNG for the dealer
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402  (experiments/common.py, a sibling module)
import jaxmpc  # noqa: E402


def measure(fn, args, keys=None, repeats=10, slow=5.0, slow_repeats=3, options=None):
    """Compile ``fn`` (with the XLA ``options``), warm up, and time it. ``keys`` (if given) supplies
    a fresh first argument per call. Returns (median seconds, compile seconds, runs)."""
    t0 = time.perf_counter()
    key_arg = (keys[0],) if keys is not None else ()
    compiled = jax.jit(fn, compiler_options=options or None).lower(*key_arg, *args).compile()
    compile_s = time.perf_counter() - t0

    def call(i):
        return compiled(*((keys[i],) if keys is not None else ()), *args)

    t0 = time.perf_counter()
    jax.block_until_ready(call(0))  # warm-up
    first = time.perf_counter() - t0
    runs = repeats if first <= slow else min(repeats, slow_repeats)
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        jax.block_until_ready(call(1 + i))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), compile_s, runs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", metavar="PATH", help="write the records as JSON here")
    ap.add_argument("--repeats", type=int, default=10, help="timed runs per case (median reported)")
    ap.add_argument("--sizes", default="128,512,1024", help="square matmul sizes, comma-separated")
    ap.add_argument("--mul-size", type=int, default=1_000_000, help="elements of the mul / relu cases")
    ap.add_argument("--parties", type=int, default=2, help="number of parties")
    ap.add_argument("--base", type=int, default=10, choices=(2, 10))
    ap.add_argument("--precision", type=int, default=3)
    ap.add_argument("--slow", type=float, default=5.0,
                    help="a case whose warm-up call takes longer than this many seconds ...")
    ap.add_argument("--slow-repeats", type=int, default=3, help="... is timed this many times instead")
    ap.add_argument("--no-relu", action="store_true", help="skip the relu case")
    ap.add_argument("--conv", default="32,16,16,32,3",
                    help="convolution case B,C,H,O,K: batch B of C x H x H images, O output channels, "
                         "K x K kernel, stride 1, padding K//2 (NCHW; '' to skip)")
    ap.add_argument("--prng", choices=("splitmix64", "threefry"),
                    default="splitmix64" if hasattr(jaxmpc, "key") else "threefry",
                    help="key implementation the dealer draws from: jaxmpc.key (SplitMix64, the "
                         "default where available) or jax.random.key (threefry)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]

    fxp = jaxmpc.FixedPoint(args.base, args.precision)
    n = args.parties
    rng = np.random.default_rng(0)
    key = jaxmpc.key(0) if args.prng == "splitmix64" else jax.random.key(0)
    k_data, k_run = jax.random.split(key)
    data_keys = iter(jax.random.split(k_data, 64))
    n_keys = max(args.repeats, 1) + 1

    def run_keys():
        nonlocal k_run
        k_run, k = jax.random.split(k_run)
        return jax.random.split(k, n_keys)

    cases = []  # (name, protocol fn, protocol args, plaintext fn, plaintext args, details)
    m = args.mul_size
    xm = rng.standard_normal(m).astype(np.float32)
    ym = rng.standard_normal(m).astype(np.float32)
    sx = jaxmpc.share(next(data_keys), xm, fxp, n_parties=n)
    sy = jaxmpc.share(next(data_keys), ym, fxp, n_parties=n)
    cases.append((f"mul_{_short(m)}", lambda k, x, y: jaxmpc.mul(k, x, y), (sx, sy),
                  lambda x, y: x * y, (jnp.asarray(xm), jnp.asarray(ym)), {"shape": [m]}))
    for s in sizes:
        a = (rng.standard_normal((s, s)) / np.sqrt(s)).astype(np.float32)
        b = rng.standard_normal((s, s)).astype(np.float32)
        sa = jaxmpc.share(next(data_keys), a, fxp, n_parties=n)
        sb = jaxmpc.share(next(data_keys), b, fxp, n_parties=n)
        cases.append((f"matmul_{s}", lambda k, x, y: jaxmpc.matmul(k, x, y), (sa, sb),
                      lambda x, y: x @ y, (jnp.asarray(a), jnp.asarray(b)), {"shape": [s, s, s]}))
    if args.conv:
        from jax import lax

        from jaxmpc.nn import conv
        b, c, h, o, k = (int(v) for v in args.conv.split(","))
        xc = rng.uniform(-1, 1, (b, c, h, h)).astype(np.float32)
        wc = (rng.uniform(-1, 1, (o, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
        scx = jaxmpc.share(next(data_keys), xc, fxp, n_parties=n)
        scw = jaxmpc.share(next(data_keys), wc, fxp, n_parties=n)
        pad = k // 2
        cases.append((f"conv_{b}x{c}x{h}_{o}k{k}",
                       lambda key, x, w: conv.conv2d(key, x, w, padding=pad), (scx, scw),
                       lambda x, w: lax.conv_general_dilated(
                           x, w, (1, 1), [(pad, pad)] * 2, dimension_numbers=("NCHW", "OIHW", "NCHW")),
                       (jnp.asarray(xc), jnp.asarray(wc)),
                       {"shape": {"x": [b, c, h, h], "w": [o, c, k, k], "stride": 1, "padding": pad}}))
    has_relu = hasattr(jaxmpc, "relu")
    if has_relu and not args.no_relu:
        cases.append((f"relu_{_short(m)}", lambda k, x: jaxmpc.relu(k, x), (sx,),
                      jax.nn.relu, (jnp.asarray(xm),), {"shape": [m], "returns": "(y, drelu)"}))
    elif not has_relu:
        print("note: jaxmpc.relu is not exported in this tree; the relu case is skipped", file=sys.stderr)

    records = []
    header = f"{'case':<20}{'seconds':>11}{'plaintext s':>14}{'ratio':>10}{'compile s':>11}{'runs':>6}"
    print(f"{n}-party protocol vs float32 plaintext, {fxp!r}, {args.prng} keys, backend "
          f"{jax.default_backend()}, {os.cpu_count()} CPUs, jax {jax.__version__}")
    print(header)
    print("-" * len(header))
    for name, pfn, pargs, tfn, targs, details in cases:
        sec, comp, runs = measure(pfn, pargs, keys=run_keys(), repeats=args.repeats, slow=args.slow,
                                  slow_repeats=args.slow_repeats, options=jaxmpc.config.compiler_options())
        psec, pcomp, pruns = measure(tfn, targs, repeats=args.repeats, slow=args.slow,
                                     slow_repeats=args.slow_repeats)
        rec = {"name": name, "mode": "protocol", "seconds": sec, "plaintext_seconds": psec,
               "ratio": sec / psec, "compile_seconds": comp, "plaintext_compile_seconds": pcomp,
               "runs": runs, "plaintext_runs": pruns, "n_parties": n, "prng": args.prng,
               "encoding": {"base": fxp.base, "precision": args.precision}, **details}
        records.append(rec)
        print(f"{name:<20}{sec:>11.4g}{psec:>14.4g}{rec['ratio']:>10.1f}{comp:>11.3g}{runs:>6}", flush=True)

    machine = {"jax_version": jax.__version__, "backend": jax.default_backend(),
               "device": str(jax.devices()[0].device_kind), "cpu_count": os.cpu_count(),
               "platform": platform.platform(), "python": platform.python_version(),
               "relu_included": has_relu and not args.no_relu}
    if args.json:
        common.write_json(args.json, {"benchmarks": records, "machine": machine,
                                      "settings": {"repeats": args.repeats, "slow": args.slow,
                                                   "slow_repeats": args.slow_repeats, "prng": args.prng,
                                                   "compiler_options": jaxmpc.config.compiler_options()}})
    return records


def _short(m: int) -> str:
    return f"{m // 1_000_000}m" if m % 1_000_000 == 0 else str(m)


if __name__ == "__main__":
    main()
