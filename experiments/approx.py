"""Accuracy of the nonlinear approximations (jaxmpc.ops.approx) against precision and iteration count.

For each function and each value of its swept iteration argument (static: one compile each), ONE
``jax.vmap``-ped, jit-compiled call evaluates the function on a grid over its stated domain at
every precision (base 2, fractional bits as array data in ``jaxmpc.FixedPoint``), each precision
with its own key. Reported per (function, iterations, precision):

  err      max |MPC - float64 exact|                 (what a user sees)
  approx   max |plaintext twin - float64 exact|      (the approximation alone, no MPC)
  mpc      max |MPC - plaintext twin| * scale        (the MPC error, in units of 1/s)

Errors are absolute except for exp, reciprocal and rsqrt, which are relative (their outputs span
orders of magnitude).

    python experiments/approx.py                                  # table, 2 parties, 12..20 bits
    python experiments/approx.py --parties 3 --precisions 12 16 20 --json approx.json --plot approx.png
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, ".."))
import jaxmpc  # noqa: E402
from jaxmpc.ops import approx  # noqa: E402


def _softmax_inputs(n=256):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n // 8, 8)) * 3.0).astype(np.float64)


# name: (domain grid, exact float64, swept argument, its values, relative error?, axis kwargs)
FUNCTIONS = {
    "exp": (np.linspace(-8.0, 4.0, 257), np.exp, "iterations", (6, 8, 10), True),
    "reciprocal": (np.geomspace(0.05, 200.0, 257), lambda x: 1.0 / x, "iterations", (6, 8, 10), True),
    "sigmoid": (np.linspace(-16.0, 16.0, 257), lambda x: 1.0 / (1.0 + np.exp(-x)), "exp_iterations",
                (6, 8, 10), False),
    "tanh": (np.linspace(-8.0, 8.0, 257), np.tanh, "exp_iterations", (6, 8, 10), False),
    "rsqrt": (np.geomspace(0.1, 100.0, 257), lambda x: 1.0 / np.sqrt(x), "iterations", (3, 4, 5), True),
    "log": (np.geomspace(1.0, 100.0, 257), np.log, "exp_iterations", (8, 9, 10), False),
    "softmax": (_softmax_inputs(), lambda x: np.asarray(jax.nn.softmax(x, axis=-1)), "exp_iterations",
                (6, 8, 10), False),
}


def run_one(name: str, iters: int, precisions, n_parties: int, key):
    """One vmapped call over precisions; returns (mpc outputs [P, ...], twin, exact)."""
    xs, exact_fn, arg, _, _ = FUNCTIONS[name]
    fn = getattr(approx, name)
    twin = np.asarray(getattr(approx, name + "_plain")(jnp.asarray(xs), **{arg: iters}))

    @jaxmpc.config.jit
    @jax.vmap
    def sweep(p, k):
        k_share, k_fn = jax.random.split(k)
        x = jaxmpc.share(k_share, jnp.asarray(xs), jaxmpc.FixedPoint(2, p), n_parties)
        return jaxmpc.reveal(fn(k_fn, x, **{arg: iters}))

    keys = jax.random.split(key, len(precisions))
    out = np.asarray(sweep(jnp.asarray(precisions, jnp.int32), keys))
    return out, twin, exact_fn(xs)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--precisions", type=int, nargs="+", default=[12, 14, 16, 18, 20],
                   help="fractional bits (base 2)")
    p.add_argument("--parties", type=int, default=2)
    p.add_argument("--only", nargs="+", choices=sorted(FUNCTIONS))
    p.add_argument("--iterations", type=int, nargs="+",
                   help="override every function's swept iteration values (one compile each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--plot", metavar="PNG")
    args = p.parse_args(argv)
    names = args.only or list(FUNCTIONS)
    key = jaxmpc.key(args.seed)
    rows = []
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        def tqdm(x, **_):
            return x
    jobs = [(n, it) for n in names for it in (args.iterations or FUNCTIONS[n][3])]
    for i, (name, iters) in enumerate(tqdm(jobs, desc="functions x iterations")):
        xs, _, arg, _, rel = FUNCTIONS[name]
        t0 = time.time()
        out, twin, exact = run_one(name, iters, args.precisions, args.parties, jax.random.fold_in(key, i))
        secs = time.time() - t0
        denom = np.abs(exact) if rel else 1.0
        approx_err = float(np.max(np.abs(twin - exact) / denom))
        for j, prec in enumerate(args.precisions):
            rows.append(dict(function=name, arg=arg, iterations=iters, precision=prec,
                             parties=args.parties, relative=rel,
                             err=float(np.max(np.abs(out[j] - exact) / denom)),
                             approx=approx_err,
                             mpc_units=float(np.max(np.abs(out[j] - twin)) * 2.0 ** prec),
                             seconds=secs))
    print(f"\n{'function':11s} {'arg':15s} {'it':>3s} {'bits':>4s} {'err vs f64':>11s} "
          f"{'approx':>10s} {'mpc (1/s)':>10s}")
    for r in rows:
        print(f"{r['function']:11s} {r['arg']:15s} {r['iterations']:3d} {r['precision']:4d} "
              f"{r['err']:11.3g} {r['approx']:10.3g} {r['mpc_units']:10.1f}"
              + ("  (relative)" if r["relative"] else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"parties": args.parties, "precisions": args.precisions, "rows": rows}, f, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        cols = min(4, len(names))
        rows_ = -(-len(names) // cols)
        fig, axes = plt.subplots(rows_, cols, figsize=(3.4 * cols, 3.0 * rows_), squeeze=False)
        for ax in axes.flat[len(names):]:
            ax.set_visible(False)
        for ax, name in zip(axes.flat, names):
            for iters in (args.iterations or FUNCTIONS[name][3]):
                rs = [r for r in rows if r["function"] == name and r["iterations"] == iters]
                ax.semilogy([r["precision"] for r in rs], [max(r["err"], 1e-12) for r in rs], "o-",
                            label=f"{FUNCTIONS[name][2]}={iters}")
            ax.set_title(name + (" (relative error)" if FUNCTIONS[name][4] else ""))
            ax.set_xlabel("fractional bits")
            ax.legend(fontsize=7)
        for row in axes:
            row[0].set_ylabel("max error vs float64")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")
    return rows


if __name__ == "__main__":
    jaxmpc.config.compilation_cache()  # a second run loads its compiled code
    main()
