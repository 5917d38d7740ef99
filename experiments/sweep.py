"""Many simulated runs in one compiled call: a grid of precisions x seeds (x learning rates).

Every grid point is one complete encrypted training run with its own PRNG key (keys are never
reused). All runs go through ONE ``jax.vmap``-ped, jit-compiled function, in chunks of
``--chunk-size`` runs (a Python loop with a progress bar, compiled once) when the grid is large. The
runs of a chunk are split over every visible device (``jaxmpc.mesh.shard_sweep``: a 1-D "runs" mesh,
bit-identical results; chunks are rounded up to a multiple of the device count, padded with fresh
keys); after ``jax.distributed.initialize()`` that is every device of every host. The same grid is
then run point by point with the same function un-vmapped on one device (same process, fresh keys),
and the speed-up of the vmapped sweep is printed and stored.

Tasks:
  seed            the seed task (jaxmpc.tasks.tutorial.run): metric = final loss, deviation from float64
  digits          jaxmpc.tasks.classify's MLP (experiments/train.py's) on scikit-learn data: metric =
  breast_cancer   test accuracy (secure inference), final train loss, deviation = max |params -
                  plaintext twin|

For a data set, a seed fixes the initial weights and the batch order (shared by all precisions
and learning rates of that seed, and by the plaintext twin); every run still has its own MPC key
(shares, dealer material, truncations).

    .venv/bin/python experiments/sweep.py                         # seed task, base 10, p = 1..4
    .venv/bin/python experiments/sweep.py --task digits --base 2 --precisions 8 10 12 16 --seeds 4 \\
        --epochs 3 --json sweep.json --plot sweep.png
    srun .venv/bin/python experiments/sweep.py --seeds 1000 --distributed --json sweep.json   # every host's GPUs
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402  (experiments/common.py, a sibling module)
import jaxmpc  # noqa: E402
from jaxmpc import mesh  # noqa: E402
from jaxmpc.tasks import classify, data, tutorial  # noqa: E402


TASKS = ("seed",) + data.DATASETS


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="seed", choices=TASKS)
    p.add_argument("--base", type=int, default=None, choices=(2, 10),
                   help="default 10 for the seed task, 2 for a data set")
    p.add_argument("--precisions", type=int, nargs="+", default=None,
                   help="default 1 2 3 4 (base 10) or 6 8 10 12 16 (base 2)")
    p.add_argument("--seeds", type=int, default=8, help="seeds per grid point")
    p.add_argument("--lrs", type=float, nargs="+", default=None,
                   help="learning rates (default: the task's own, one value)")
    p.add_argument("--parties", type=int, default=None,
                   help="number of data-holding parties (default: 2, or 3 for --protocol replicated)")
    common.add_protocol_args(p)
    p.add_argument("--truncation", default="default", choices=common.truncations(),
                   help="truncation scheme (see train.py --help)")
    p.add_argument("--iterations", type=int, default=tutorial.ITERATIONS, help="seed task: steps")
    p.add_argument("--epochs", type=int, default=3, help="data set: epochs")
    p.add_argument("--batch-size", type=int, default=32, help="data set: minibatch size")
    p.add_argument("--hidden", type=int, nargs="*", default=[128], help="data set: hidden sizes")
    p.add_argument("--momentum", type=float, default=0.9, help="data set: SGD momentum")
    p.add_argument("--mode", default="protocol", choices=("protocol", "ideal"),
                   help="data set: Beaver simulation of the linear layers")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="runs per vmapped call (default: the whole grid in one call; rounded up to a "
                        "multiple of the device count)")
    p.add_argument("--vmap", default="lanes", choices=("lanes", "jax"),
                   help="lanes: jaxmpc.lanes.vmap, the run axis innermost (default; faster on CPUs, the "
                        "same shares); jax: jax.vmap")
    p.add_argument("--devices", type=int, default=None,
                   help="use the first N devices of jax.devices() (default: every visible device)")
    p.add_argument("--distributed", action="store_true",
                   help="several processes / hosts: call jax.distributed.initialize() first (arguments "
                        "auto-detected on SLURM, Open MPI, Kubernetes, ...; or give the three below)")
    p.add_argument("--coordinator", default=None, help="with --distributed: host:port of process 0")
    p.add_argument("--num-processes", type=int, default=None, help="with --distributed")
    p.add_argument("--process-id", type=int, default=None, help="with --distributed")
    p.add_argument("--baseline-points", type=int, default=None,
                   help="grid points to time one by one for the speed-up (default all; 0 skips; "
                        "fewer than the grid are extrapolated)")
    p.add_argument("--seed", type=int, default=0, help="root PRNG seed")
    p.add_argument("--json", metavar="PATH", help="write the grid results as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG: metric and deviation vs precision")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    args.parties = common.default_parties(args.protocol, args.parties)
    if args.base is None:
        args.base = 10 if args.task == "seed" else 2
    if args.precisions is None:
        args.precisions = [1, 2, 3, 4] if args.base == 10 else [6, 8, 10, 12, 16]
    if args.lrs is None:
        args.lrs = [tutorial.LEARNING_RATE if args.task == "seed" else classify.default_lr(args.task)]
    return args


def check_args(args):
    common.check_config(n_parties=args.parties, truncation=args.truncation, base=args.base,
                        precisions=args.precisions, protocol=args.protocol, ring=args.ring)
    if args.seeds < 1:
        sys.exit("--seeds must be at least 1")
    if args.chunk_size is not None and args.chunk_size < 1:
        sys.exit("--chunk-size must be at least 1")
    if args.baseline_points is not None and args.baseline_points < 0:
        sys.exit("--baseline-points must be >= 0")
    if args.devices is not None and not 1 <= args.devices <= len(jax.devices()):
        sys.exit(f"--devices must be in 1..{len(jax.devices())} (the visible devices)")


# ---- the tasks: one run as a pure function of (key, precision, learning rate, per-seed data) -------
class SeedTask:
    """The seed task: metric = final loss; deviation = max over steps |loss - float64 loss|."""

    metric, metric_label, better = "final_loss", "final loss (SSE)", "lower"

    def __init__(self, args):
        self.args = args
        self.per_seed = {}  # nothing varies with the seed but the MPC key
        self.plain = {lr: tutorial.plaintext_losses(args.iterations, lr) for lr in args.lrs}

    def run(self, key, precision, lr, per_seed):
        del per_seed
        a = self.args
        return {"losses": tutorial.run(key, precision, base=a.base, n_parties=a.parties,
                                       iterations=a.iterations, learning_rate=lr, truncation=a.truncation,
                                       protocol=a.protocol, ring=a.ring)}

    def metrics(self, out, lrs):
        """Per-run metrics (numpy, leading run axis) from the stacked outputs of :meth:`run`."""
        losses = np.asarray(out["losses"])
        plain = np.stack([self.plain[float(lr)] for lr in lrs])
        return {"final_loss": losses[:, -1],
                "deviation": np.abs(losses - plain).max(axis=1),
                "plaintext_final_loss": plain[:, -1]}


class DataTask:
    """A data set with :mod:`jaxmpc.tasks.classify`'s MLP: metric = test accuracy (secure inference)."""

    metric, metric_label, better = "test_accuracy", "test accuracy (secure inference)", "higher"

    def __init__(self, args):
        self.args = args
        ds = self.ds = data.load(args.task)
        if not 1 <= args.batch_size <= ds.n_train:
            sys.exit(f"--batch-size must be in 1..{ds.n_train}")
        self.cfg = classify.config_for(ds, hidden=args.hidden, n_parties=args.parties, base=args.base,
                                       truncation=args.truncation, mode=args.mode,
                                       momentum=float(args.momentum), protocol=args.protocol, ring=args.ring)
        self.arrays = (jnp.asarray(ds.x_train), jnp.asarray(data.one_hot(ds.y_train, ds.n_classes)),
                       jnp.asarray(ds.x_test), jnp.asarray(ds.y_test))
        # per seed: initial weights and batch order (plaintext, shared by every run of that seed)
        k_seeds = jax.random.split(jax.random.fold_in(jaxmpc.key(args.seed), 1), args.seeds)
        inits, orders = [], []
        for k in k_seeds:
            k_init, k_order = jax.random.split(k)
            inits.append(classify.make_model(self.cfg).init(k_init))
            orders.append(classify.batch_orders(k_order, args.epochs, ds.n_train, args.batch_size))
        self.per_seed = {"init": jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *inits),
                         "orders": jnp.stack(orders)}

    def run(self, key, precision, lr, per_seed):
        return classify.full_run(key, precision, lr, per_seed["init"], per_seed["orders"], *self.arrays,
                                 cfg=self.cfg)

    def metrics(self, out, lrs):
        del lrs
        return {"test_accuracy": np.asarray(out["encrypted_test_accuracy"]),
                "final_loss": np.asarray(out["encrypted_loss"])[:, -1],
                "deviation": np.asarray(out["max_param_deviation"]),
                "plaintext_test_accuracy": np.asarray(out["plaintext_test_accuracy"]),
                "plaintext_final_loss": np.asarray(out["plaintext_loss"])[:, -1]}


# ---- running the grid ---------------------------------------------------------------------------
def _with_key_data(run, impl):
    """``run`` taking its key as raw ``uint32`` key data of the PRNG implementation ``impl``.

    The runs are compiled ahead of time (to time compilation apart from running), and calling such a
    compiled function with a slice of a typed key array makes JAX's eager key-reuse checker (JAX 0.10)
    mark the whole array consumed, so the next chunk's slice is refused although its keys are fresh.
    Raw key data passes the boundary unchecked; inside, the checker still sees every use.
    """
    def run_from_data(key_data, *args):
        return run(jax.random.wrap_key_data(key_data, impl=impl), *args)
    return run_from_data


def _take(tree, idx):
    return jax.tree_util.tree_map(lambda a: a[idx], tree)


def _abstract(args):
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), args)


def run_vmapped(task, keys, precisions, lrs, seed_idx, chunk: int, quiet: bool, pad_key, runs_mesh=None,
                lanes: bool = True):
    """All runs through one vmapped, jitted function, ``chunk`` runs per call (the last chunk padded
    with fresh keys and repeated configurations, whose results are dropped), each call's runs split
    over the devices of ``runs_mesh`` (default: every visible device; ``chunk`` must be a multiple
    of their number), vmapped by ``jaxmpc.lanes.vmap`` (``lanes``) or ``jax.vmap``.

    Returns ``(outputs stacked over runs, compile seconds, run seconds)``.
    """
    n_runs = len(precisions)
    n_chunks = math.ceil(n_runs / chunk)
    pad = n_chunks * chunk - n_runs
    if pad:
        keys = jnp.concatenate([keys, jax.random.split(pad_key, pad)])
        fill = np.full(pad, n_runs - 1)
        precisions, lrs, seed_idx = (np.concatenate([a, a[fill]]) for a in (precisions, lrs, seed_idx))
    impl = jax.random.key_impl(keys)
    keys = jax.random.key_data(keys)  # see _with_key_data
    sweep = mesh.shard_sweep(_with_key_data(task.run, impl), runs_mesh, lanes=lanes)

    def args_of(c):
        sl = slice(c * chunk, (c + 1) * chunk)
        return (keys[sl], jnp.asarray(precisions[sl], jnp.int32), jnp.asarray(lrs[sl], jnp.float64),
                _take(task.per_seed, jnp.asarray(seed_idx[sl])))

    t0 = time.perf_counter()
    fn, placed, _ = sweep.prepare(*args_of(0))  # placed on the mesh: one slice of runs per device
    compiled = fn.lower(*placed).compile()
    t_compile = time.perf_counter() - t0
    outs = []
    t0 = time.perf_counter()
    for c in common.progress(range(n_chunks), n_chunks, "vmapped chunks", quiet):
        outs.append(jax.block_until_ready(compiled(*sweep.prepare(*args_of(c))[1])))
    t_run = time.perf_counter() - t0
    out = jax.tree_util.tree_map(lambda *xs: np.concatenate(mesh.gather(xs))[:n_runs], *outs)
    return out, t_compile, t_run


def run_pointwise(task, keys, precisions, lrs, seed_idx, quiet: bool):
    """The same runs one at a time with the un-vmapped function (compiled once)."""
    impl = jax.random.key_impl(keys)
    keys = jax.random.key_data(keys)  # see _with_key_data
    fn = jaxmpc.config.jit(_with_key_data(task.run, impl))

    def args_of(i):
        return (keys[i], jnp.int32(precisions[i]), jnp.float64(lrs[i]), _take(task.per_seed, int(seed_idx[i])))

    t0 = time.perf_counter()
    compiled = fn.lower(*_abstract(args_of(0))).compile()
    t_compile = time.perf_counter() - t0
    outs = []
    t0 = time.perf_counter()
    for i in common.progress(range(len(precisions)), len(precisions), "point by point", quiet):
        outs.append(jax.block_until_ready(compiled(*args_of(i))))
    t_run = time.perf_counter() - t0
    out = jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *outs)
    return out, t_compile, t_run


def summarise(args, task, metrics, grid):
    """Rows of (precision, lr) with mean / std / worst over seeds of every metric."""
    rows = []
    for p in args.precisions:
        for lr in args.lrs:
            sel = (grid["precision"] == p) & (grid["lr"] == lr)
            row = {"precision": int(p), "lr": float(lr), "runs": int(sel.sum())}
            for name, vals in metrics.items():
                v = vals[sel]
                worse_is_low = name.endswith("accuracy")
                row[name] = {"mean": float(v.mean()), "std": float(v.std()),
                             "worst": float(v.min() if worse_is_low else v.max())}
            rows.append(row)
    return rows


def print_table(args, task, rows):
    names = [task.metric] + [m for m in ("final_loss", "deviation") if m != task.metric]
    head = f"{'prec':>4} {'lr':>7}" + "".join(f" {n + ' mean':>19} {'std':>9} {'worst':>9}" for n in names)
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['precision']:>4} {r['lr']:>7.3g}" + "".join(
            f" {r[n]['mean']:>19.5g} {r[n]['std']:>9.2g} {r[n]['worst']:>9.5g}" for n in names))
    if "plaintext_test_accuracy" in rows[0]:
        print("plaintext twin test accuracy (mean over seeds): " + ", ".join(
            f"lr {lr:g}: {np.mean([r['plaintext_test_accuracy']['mean'] for r in rows if r['lr'] == lr]):.4f}"
            for lr in args.lrs))
    else:
        print("plaintext float64 final loss: " + ", ".join(
            f"lr {lr:g}: {task.plain[lr][-1]:.5f}" for lr in args.lrs))


def make_grid(args):
    """The grid, flattened: seeds (outer) x precisions x learning rates (inner), and its keys.

    Returns ``(seed index, precision, learning rate)`` per run (numpy) and ``(keys, pad_key,
    baseline_key)``: one key per run, a key for padding runs and one for the point-by-point baseline.
    """
    s_idx, p_idx, l_idx = (a.ravel() for a in np.meshgrid(
        np.arange(args.seeds), np.arange(len(args.precisions)), np.arange(len(args.lrs)), indexing="ij"))
    precisions = np.asarray(args.precisions, np.int64)[p_idx]
    lrs = np.asarray(args.lrs, np.float64)[l_idx]
    k_runs, k_pad, k_base = jax.random.split(jax.random.fold_in(jaxmpc.key(args.seed), 2), 3)
    return s_idx, precisions, lrs, (jax.random.split(k_runs, len(precisions)), k_pad, k_base)


def main(argv=None):
    args = parse_args(argv)
    if args.distributed:  # before any computation: afterwards jax.devices() spans every process
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    check_args(args)
    task = SeedTask(args) if args.task == "seed" else DataTask(args)

    s_idx, precisions, lrs, (keys, k_pad, k_base) = make_grid(args)
    n_runs = len(precisions)
    runs_mesh = mesh.sweep_mesh(jax.devices()[:args.devices])  # every visible device by default
    n_devices = runs_mesh.size
    chunk = mesh.padded_runs(min(args.chunk_size or n_runs, n_runs), n_devices)

    print(f"jaxmpc sweep: task {args.task}, base {args.base}, precisions {args.precisions}, "
          f"learning rates {args.lrs}, {args.seeds} seeds: {n_runs} runs, {args.parties} parties "
          f"({args.protocol} protocol over Z_2^{args.ring}), "
          f"{math.ceil(n_runs / chunk)} vmapped call(s) of {chunk} runs on {n_devices} "
          f"{jax.default_backend()} device(s)"
          + (f" of {jax.process_count()} processes" if jax.process_count() > 1 else ""))
    out, t_compile, t_run = run_vmapped(task, keys, precisions, lrs, s_idx, chunk, args.quiet, k_pad, runs_mesh,
                                        lanes=args.vmap == "lanes")
    metrics = task.metrics(out, lrs)
    print(f"vmapped: compile {t_compile:.2f} s, run {t_run:.2f} s ({t_run / n_runs * 1e3:.1f} ms per run)\n")

    grid = {"seed": s_idx, "precision": precisions, "lr": lrs}
    rows = summarise(args, task, metrics, grid)
    print_table(args, task, rows)

    n_base = n_runs if args.baseline_points is None else min(args.baseline_points, n_runs)
    baseline = None
    if n_base:
        # fresh keys: a key is never used twice, even to re-run the same configuration
        base_keys = jax.random.split(k_base, n_base)
        b_out, b_compile, b_run = run_pointwise(task, base_keys, precisions[:n_base], lrs[:n_base],
                                                s_idx[:n_base], args.quiet)
        per_run = b_run / n_base
        full_run = per_run * n_runs
        b_metrics = task.metrics(b_out, lrs[:n_base])
        baseline = {
            "points_timed": n_base, "extrapolated": n_base < n_runs,
            "compile_seconds": b_compile, "run_seconds_timed": b_run,
            "run_seconds_per_point": per_run, "run_seconds_full_grid": full_run,
            "speedup_run": full_run / t_run,
            "speedup_with_compile": (b_compile + full_run) / (t_compile + t_run),
            "metric_mean_pointwise": float(np.mean(b_metrics[task.metric])),
            "metric_mean_vmapped_same_points": float(np.mean(metrics[task.metric][:n_base])),
        }
        print(f"\npoint by point ({n_base} of {n_runs} points timed"
              + (", extrapolated" if n_base < n_runs else "") + f"): compile {b_compile:.2f} s, "
              f"{per_run * 1e3:.1f} ms per run, {full_run:.2f} s for the grid")
        print(f"speed-up of the vmapped sweep: {baseline['speedup_run']:.1f}x (run time), "
              f"{baseline['speedup_with_compile']:.1f}x (compile + run)")

    if args.json:
        result = {
            "task": args.task,
            **common.protocol_fields(args),
            "config": {k: v for k, v in vars(args).items()
                       if k not in ("json", "plot", "quiet", "coordinator", "process_id")},
            "n_runs": n_runs, "chunk_size": chunk, "metric": task.metric,
            "grid": {k: v.tolist() for k, v in grid.items()},
            "runs": {k: v.tolist() for k, v in metrics.items()},
            "summary": rows,
            "vmapped": {"compile_seconds": t_compile, "run_seconds": t_run, "calls": math.ceil(n_runs / chunk),
                        "vmap": args.vmap},
            "pointwise": baseline,
            "speedup": baseline["speedup_run"] if baseline else None,
            "backend": jax.default_backend(),
            "devices": n_devices, "processes": jax.process_count(),
        }
        if jax.process_index() == 0:  # every process holds the same results; one writes them
            common.write_json(args.json, result)
    if args.plot and jax.process_index() == 0:
        plot(args, task, metrics, grid, args.plot)
        print(f"wrote {args.plot}")
    return rows, baseline


def plot(args, task, metrics, grid, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_m, ax_d) = plt.subplots(1, 2, figsize=(11, 4))
    prec = np.asarray(args.precisions)
    for j, lr in enumerate(args.lrs):
        for ax, name in ((ax_m, task.metric), (ax_d, "deviation")):
            per_p = [metrics[name][(grid["precision"] == p) & (grid["lr"] == lr)] for p in prec]
            mean = np.array([v.mean() for v in per_p])
            std = np.array([v.std() for v in per_p])
            line, = ax.plot(prec, mean, "o-", color=f"C{j}", label=f"lr {lr:g} (mean)")
            ax.fill_between(prec, [v.min() for v in per_p], [v.max() for v in per_p],
                            color=line.get_color(), alpha=0.15)
            low = np.minimum(std, 0.9 * np.abs(mean))  # keep bars above 0 on log axes
            ax.errorbar(prec, mean, yerr=(low, std), fmt="none", ecolor=line.get_color(), capsize=3)
            for p, v in zip(prec, per_p):
                ax.plot(np.full(v.shape, p), v, ".", color=line.get_color(), alpha=0.4, ms=4)
        if task.metric == "test_accuracy":
            plain = np.mean(metrics["plaintext_test_accuracy"][grid["lr"] == lr])
        else:
            plain = task.plain[lr][-1]
        ax_m.axhline(plain, color=f"C{j}", ls=":", label=f"plaintext, lr {lr:g}")
    base_name = "bits" if args.base == 2 else "decimal digits"
    ax_m.set(xlabel=f"precision ({base_name})", ylabel=task.metric_label,
             title=f"{args.task}: {args.seeds} seeds per point (band = min..max, bars = std)")
    if task.metric == "final_loss":
        ax_m.set_yscale("log")
    ax_d.set(xlabel=f"precision ({base_name})", yscale="log",
             ylabel="max |loss - plaintext loss|" if args.task == "seed" else "max |params - plaintext twin|",
             title="deviation from plaintext")
    for ax in (ax_m, ax_d):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    jaxmpc.config.compilation_cache()  # a second run loads its compiled code
    main()
