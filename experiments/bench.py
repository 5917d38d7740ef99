"""Benchmarks: jaxmpc against plaintext float32 JAX doing the same maths, measured in the same run.

Every record times a jit-compiled function after a warm-up (median of --repeats runs, each ended by
block_until_ready), times its compilation separately, and divides by the plaintext time measured
in the same process. jaxmpc's functions are compiled with jaxmpc's XLA options
(``jaxmpc.config.compiler_options``; ``--xla-options default`` for JAX's defaults), plaintext
functions with JAX's defaults (the options do not help float32 code). Modes: ``protocol`` (the
real protocol, bit-identical fast paths) and ``ideal`` (the ideal functionality for bilinear maps:
exact product re-shared, same truncation protocol).

    .venv/bin/python experiments/bench.py --json bench.json            # everything
    .venv/bin/python experiments/bench.py --only seed_20 matmul_512
    .venv/bin/python experiments/bench.py --json docs/performance.json  # the recorded run, then
    .venv/bin/python experiments/performance.py                         # docs/performance.md from it

The JSON holds ``{"machine": ..., "benchmarks": [...]}``: the machine record says where and when it
ran (platform, CPU model and count, JAX and jaxlib versions, backend and device, the load average at
the start and at the end, the UTC start time, the command line and the git commit), so that a figure
never travels without its context.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import common  # noqa: E402  (experiments/common.py, a sibling module)
import jaxmpc  # noqa: E402
from jaxmpc.nn import losses, models, optim  # noqa: E402
from jaxmpc.tasks import tutorial  # noqa: E402


OPTIONS = {}  # XLA options for jaxmpc's functions (set by main from --xla-options)
PROTOCOL = {"protocol": "additive", "ring": 64}  # how every value is shared (main: --protocol, --ring)
PARTIES = {"n_parties": 2}  # the family's smallest party count (main: 3 for replicated)


FRACTIONAL_BITS = {64: 16, 32: 12}  # the benchmarks' base-2 precision per ring (Z_2^32 holds 0..14)


def share(key, x, fxp):
    """``jaxmpc.share`` among :data:`PARTIES` parties under :data:`PROTOCOL`."""
    return jaxmpc.share(key, x, fxp, PARTIES["n_parties"], **PROTOCOL)


def bench_fxp():
    """The benchmarks' encoding on :data:`PROTOCOL`'s ring (:data:`FRACTIONAL_BITS`)."""
    return jaxmpc.FixedPoint(2, FRACTIONAL_BITS[PROTOCOL["ring"]])


def seed_run(key, precision):
    """The seed task (``tutorial.run``) under :data:`PROTOCOL`."""
    return tutorial.run(key, precision, **PARTIES, **PROTOCOL)


def timed(fn, args, repeats, options=None):
    """(median seconds, compile seconds) of ``fn`` on ``args``, jitted with the XLA ``options``.
    The compile seconds are tracing, lowering and XLA compilation, cold (no compilation cache),
    after :func:`main` has paid JAX's one-time start-up on a trivial function (else the first
    benchmark would)."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn, compiler_options=options or None).lower(*args).compile()
    t_compile = time.perf_counter() - t0
    jax.block_until_ready(compiled(*args))  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), t_compile


def record(name, mode, secure, plain, repeats, extra=None):
    (s, c), (p, _) = timed(*secure, repeats, OPTIONS), timed(*plain, repeats)
    rec = {"name": name, "mode": mode, **PROTOCOL, **PARTIES, "seconds": s, "plaintext_seconds": p, "ratio": s / p,
           "compile_seconds": c, **(extra or {})}
    print(f"{name:>18} {PROTOCOL['ring']:>4} {mode:>8} {s * 1e3:>11.3f} {p * 1e3:>11.3f} {s / p:>8.1f}x "
          f"{c:>9.2f}", flush=True)
    return rec


# ---- micro-benchmarks ---------------------------------------------------------------------------
def bench_mul(n, mode, repeats):
    fxp = bench_fxp()
    k = jax.random.split(jaxmpc.key(0), 3)
    a, b = np.random.default_rng(0).uniform(-1, 1, (2, n))
    x, y = share(k[0], a, fxp), share(k[1], b, fxp)
    secure = (lambda key, x, y: jaxmpc.mul(key, x, y, mode=mode).shares, (k[2], x, y))
    plain = (lambda a, b: a * b, (jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)))
    return record(f"mul_{n // 1000000}m" if n >= 10**6 else f"mul_{n}", mode, secure, plain, repeats)


def bench_matmul(n, mode, repeats):
    fxp = bench_fxp()
    k = jax.random.split(jaxmpc.key(1), 3)
    a, b = np.random.default_rng(1).uniform(-1, 1, (2, n, n))
    x, y = share(k[0], a, fxp), share(k[1], b, fxp)
    secure = (lambda key, x, y: jaxmpc.matmul(key, x, y, mode=mode).shares, (k[2], x, y))
    plain = (jnp.matmul, (jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)))
    return record(f"matmul_{n}", mode, secure, plain, repeats)


def bench_relu(n, mode, repeats):
    fxp = bench_fxp()
    k = jax.random.split(jaxmpc.key(2), 2)
    a = np.random.default_rng(2).uniform(-1, 1, n)
    x = share(k[0], a, fxp)
    secure = (lambda key, x: jaxmpc.relu(key, x)[0].shares, (k[1], x))
    plain = (jax.nn.relu, (jnp.asarray(a, jnp.float32),))
    return record(f"relu_{n // 1000000}m" if n >= 10**6 else f"relu_{n}", mode, secure, plain, repeats)


# ---- training steps -----------------------------------------------------------------------------
def bench_mlp_step(name, sizes, batch, mode, repeats):
    """One SGD-with-momentum step (forward, MSE, backward, update) on a shared batch."""
    fxp = bench_fxp()
    net = models.mlp(sizes, mode=mode)
    k = jax.random.split(jaxmpc.key(3), 6)
    params_plain = net.init(k[0])
    rng = np.random.default_rng(3)
    xb = rng.uniform(0, 1, (batch, sizes[0]))
    yb = np.eye(sizes[-1])[rng.integers(0, sizes[-1], batch)]
    params = share(k[1], params_plain, fxp)
    x, y = share(k[2], xb, fxp), share(k[3], yb, fxp)
    opt = optim.sgd(0.1, key=k[4], momentum=0.9)
    state = opt.init(params)

    def secure_step(key, params, state, x, y):
        return jaxmpc.nn.training.step(key, net, losses.mse, opt, params, state, x, y)

    popt = optax.sgd(0.1, momentum=0.9)
    p32 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), params_plain)
    pstate = popt.init(p32)

    def plain_step(p, s, xb, yb):
        return jaxmpc.nn.training.plain_step(net, losses.mse_plain, popt, p, s, xb, yb)

    return record(name, mode, (secure_step, (k[5], params, state, x, y)),
                  (plain_step, (p32, pstate, jnp.asarray(xb, jnp.float32), jnp.asarray(yb, jnp.float32))),
                  repeats, {"sizes": list(sizes), "batch": batch, "parties": PARTIES["n_parties"]})


def plain_seed_run(lr=tutorial.LEARNING_RATE, iterations=tutorial.ITERATIONS):
    """The seed task in float32 plaintext JAX: 20 SGD steps in a scan."""
    net = tutorial.model()
    x, t = jnp.asarray(tutorial.DATA, jnp.float32), jnp.asarray(tutorial.TARGET, jnp.float32)
    p0 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), tutorial.INIT)

    def body(p, _):
        loss, g = jax.value_and_grad(lambda p: losses.sse_plain(net.plain(p, x), t))(p)
        return jax.tree_util.tree_map(lambda w, d: w - lr * d, p, g), loss

    return jax.lax.scan(body, p0, None, length=iterations)[1]


def bench_seed(mode, repeats):
    del mode
    key = jaxmpc.key(4)
    return record("seed_20", "protocol", (lambda k: seed_run(k, 4), (key,)),
                  (lambda: plain_seed_run(), ()), repeats)


def bench_seed_sweep(configs, repeats, lanes=False):
    """256 seed-task runs (precisions x seeds) as one vmapped call, and the same grid one by one.
    ``lanes``: vmapped with ``jaxmpc.lanes.vmap`` (the run axis innermost) instead of ``jax.vmap``.

    One by one: the compiled single run called once per configuration, its arguments sliced
    beforehand (slicing a key array in the loop costs a dispatch per run, about as long as the run
    itself, and is not simulation work); the median of 5 passes over the grid."""
    precisions = jnp.asarray(np.resize([2, 3, 4, 5], configs), jnp.int32)
    keys = jax.random.split(jaxmpc.key(5), configs)
    lrs = jnp.full((configs,), tutorial.LEARNING_RATE, jnp.float32)
    secure = ((jaxmpc.lanes.vmap if lanes else jax.vmap)(seed_run), (keys, precisions))
    plain = (jax.vmap(plain_seed_run), (lrs,))
    rec = record(f"seed_sweep_{configs}" + ("_lanes" if lanes else ""), "protocol", secure, plain, repeats,
                 {"vmap": "jaxmpc.lanes.vmap" if lanes else "jax.vmap"})
    one = jax.jit(seed_run, compiler_options=OPTIONS or None).lower(keys[0], precisions[0]).compile()
    args = [(keys[i], precisions[i]) for i in range(configs)]
    jax.block_until_ready(one(*args[0]))
    passes = []
    for _ in range(5):
        t0 = time.perf_counter()
        for a in args:
            out = one(*a)
        jax.block_until_ready(out)
        passes.append(time.perf_counter() - t0)
    rec["one_by_one_seconds"] = statistics.median(passes)
    rec["sweep_over_one_by_one"] = rec["seconds"] / rec["one_by_one_seconds"]
    print(f"{'':>18} one by one: {rec['one_by_one_seconds']:.3f} s; vmapped sweep costs "
          f"{rec['sweep_over_one_by_one']:.3f} of it", flush=True)
    return rec


BENCHES = {
    "seed_20": lambda m, r: bench_seed(m, r),
    "seed_sweep_256": lambda m, r: bench_seed_sweep(256, r),
    "seed_sweep_256_lanes": lambda m, r: bench_seed_sweep(256, r, lanes=True),
    "digits_mlp_step": lambda m, r: bench_mlp_step("digits_mlp_step", (64, 128, 10), 64, m, r),
    "mnist_mlp_step": lambda m, r: bench_mlp_step("mnist_mlp_step", (784, 128, 128, 10), 128, m, r),
    "mul_1m": lambda m, r: bench_mul(10**6, m, r),
    "matmul_128": lambda m, r: bench_matmul(128, m, r),
    "matmul_512": lambda m, r: bench_matmul(512, m, r),
    "matmul_1024": lambda m, r: bench_matmul(1024, m, r),
    "relu_1m": lambda m, r: bench_relu(10**6, m, r),
}
MODES = {"digits_mlp_step": ("protocol", "ideal"), "mnist_mlp_step": ("protocol", "ideal"),
         "matmul_512": ("protocol", "ideal"), "matmul_1024": ("protocol", "ideal")}


def _load_average():
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _cpu_model():
    """The CPU's model name (from /proc/cpuinfo on Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _git_commit():
    """The checked-out commit of the repository holding this script (``-dirty`` appended when
    tracked files under jaxmpc/ or experiments/ differ from it), or None outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ":/jaxmpc", ":/experiments")
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("-dirty" if dirty else "")) or None


def machine_record(argv=None):
    """Where and when the benchmarks ran: what a figure needs beside it to be read later."""
    import jaxlib
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "backend": jax.default_backend(),
            "device": jax.devices()[0].device_kind, "device_count": jax.device_count(),
            "cpus": os.cpu_count(), "cpu_model": _cpu_model(), "machine": platform.machine(),
            "platform": platform.platform(), "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "load_average_start": _load_average(), "load_average_end": None,
            "command": " ".join(["python", "experiments/bench.py"] + list(sys.argv[1:] if argv is None else argv)),
            "commit": _git_commit()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=sorted(BENCHES), help="run only these benchmarks")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--xla-options", choices=("jaxmpc", "default"), default="jaxmpc",
                   help="XLA options for jaxmpc's functions: jaxmpc.config.compiler_options() "
                        "(default) or JAX's defaults")
    common.add_protocol_args(p)
    p.add_argument("--rings", type=int, nargs="+", metavar="BITS",
                   help="run every benchmark on each of these rings in turn, in this one process "
                        "(e.g. --rings 64 32; overrides --ring)")
    args = p.parse_args(argv)
    PARTIES["n_parties"] = common.default_parties(args.protocol, None)
    rings = args.rings or [args.ring]
    for bits in rings:
        common.check_config(n_parties=PARTIES["n_parties"], protocol=args.protocol, ring=bits)
    global OPTIONS
    OPTIONS = jaxmpc.config.compiler_options() if args.xla_options == "jaxmpc" else {}
    names = args.only or list(BENCHES)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, {os.cpu_count()} CPUs, "
          f"{jax.devices()[0].device_kind}; jaxmpc's XLA options {OPTIONS}; {args.protocol} protocol "
          f"over Z_2^{', Z_2^'.join(map(str, rings))}")
    print(f"{'name':>18} {'ring':>4} {'mode':>8} {'ms':>11} {'plain ms':>11} {'ratio':>9} {'compile s':>9}")
    jax.jit(lambda v: v + 1).lower(jnp.zeros((), jnp.uint64)).compile()  # JAX's one-time start-up
    meta = machine_record(argv)
    meta["compiler_options"] = OPTIONS
    meta["repeats"], meta["default_repeats"] = args.repeats, p.get_default("repeats")
    meta["only"] = args.only  # None: every benchmark
    out = []
    for bits in rings:
        PROTOCOL.update(protocol=args.protocol, ring=bits)
        for name in names:
            for mode in MODES.get(name, ("protocol",)):
                out.append(BENCHES[name](mode, args.repeats))
                meta["load_average_end"] = _load_average()
                if args.json:  # rewritten after every record: a run stopped early keeps what it measured
                    with open(args.json, "w") as f:
                        json.dump({"machine": meta, "benchmarks": out}, f, indent=1)
    if args.json:
        print(f"wrote {args.json}")
    return out


if __name__ == "__main__":
    main()
