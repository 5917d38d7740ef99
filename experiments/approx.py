"""Accuracy of the nonlinear approximations (jaxmpc.ops.approx) against precision and iteration count,
and the generated page docs/approx.md. The measurement is jaxmpc.ops.accuracy.measure: each function
on a grid of its documented domain, all precisions (base 2, fractional bits as array data) and keys
in one vmapped, jitted call per (function, iterations). Reported per (function, iterations, precision):

  err      max |MPC - f| / max(1, |f|) against float64 f (absolute where |f| <= 1, relative above)
  abs      max |MPC - f|
  twin     err of the plaintext twin (the approximation alone, no MPC)
  worst    the input where err is largest

    python experiments/approx.py                                   # table, 2 parties, 12..20 bits
    python experiments/approx.py --parties 3 --precisions 12 16 20 --json approx.json --plot approx.png
    python experiments/approx.py --write                           # (re)write docs/approx.md
    python experiments/approx.py --check                           # exit 1 with a diff if it is stale
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import jax

jax.config.update("jax_enable_x64", True)

import jaxmpc  # noqa: E402
from jaxmpc.ops import accuracy  # noqa: E402

DOC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "approx.md"))
SWEPT = {  # the iteration argument swept per function, and its values
    "exp": ("iterations", (6, 8, 10)),
    "reciprocal": ("iterations", (6, 8, 10)),
    "divide": ("iterations", (8, 10)),
    "sigmoid": ("exp_iterations", (6, 8, 10)),
    "tanh": ("exp_iterations", (6, 8, 10)),
    "rsqrt": ("iterations", (3, 4, 5)),
    "log": ("exp_iterations", (8, 9, 10)),
    "softmax": ("exp_iterations", (6, 8, 10)),
    "sqrt": ("iterations", (3, 4, 5)),
    "log_softmax": ("exp_iterations", (8, 9, 10)),
    "erf": ("degree", (13, 15, 17)),
    "gelu": ("degree", (13, 15, 17)),
    "exp2": ("iterations", (6, 8, 10)),
    "log2": ("exp_iterations", (8, 9, 10)),
    "log1p": ("exp_iterations", (8, 9, 10)),
    "cos": ("degree", (10, 12, 14)),
    "sin": ("degree", (11, 13, 15)),
}


def page_command(args) -> int:
    text = accuracy.page()
    if args.check:
        on_disk = open(args.out).read() if os.path.exists(args.out) else None
        problems = accuracy.problems(text, on_disk, args.out)
        if problems:
            print(problems, file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    with open(args.out, "w") as f:
        f.write(text)
    print(f"wrote {args.out}")
    return 0


def sweep(args) -> list:
    names = args.only or list(accuracy.NAMES)
    rows = []
    for name in names:
        arg, values = SWEPT[name]
        for it in args.iterations or values:
            for m in accuracy.measure(name, precisions=args.precisions, n_parties=args.parties,
                                      seed=args.seed, **{arg: it}):
                row = {k: v for k, v in m._asdict().items() if k not in ("inputs", "results")}
                rows.append(dict(row, arg=arg, iterations=it))
    print(f"\n{'function':11s} {'arg':15s} {'it':>3s} {'bits':>4s} {'domain':>18s} {'err':>9s} "
          f"{'abs':>9s} {'twin':>9s} {'worst':>9s}")
    for r in rows:
        dom = f"[{r['low']:g}, {r['high']:g}]"
        print(f"{r['name']:11s} {r['arg']:15s} {r['iterations']:3d} {r['precision']:4d} {dom:>18s} "
              f"{r['err']:9.3g} {r['abs']:9.3g} {r['twin_err']:9.3g} {r['worst']:9.4g}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"parties": args.parties, "precisions": args.precisions, "rows": rows}, f, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        plot(rows, names, args.plot)
    return rows


def plot(rows, names, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cols = min(4, len(names))
    n_rows = -(-len(names) // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(3.4 * cols, 3.0 * n_rows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        for it in sorted({r["iterations"] for r in rows if r["name"] == name}):
            rs = [r for r in rows if r["name"] == name and r["iterations"] == it]
            ax.semilogy([r["precision"] for r in rs], [max(r["err"], 1e-12) for r in rs], "o-",
                        label=f"{SWEPT[name][0]}={it}")
        ax.set_title(name)
        ax.set_xlabel("fractional bits")
        ax.legend(fontsize=7)
    for row in axes:
        row[0].set_ylabel("max |y - f| / max(1, |f|)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true", help="(re)write docs/approx.md and exit")
    p.add_argument("--check", action="store_true",
                   help="do not write: exit 1 and print a diff when docs/approx.md differs from the code")
    p.add_argument("--out", default=DOC, help="the page for --write / --check (default: docs/approx.md)")
    p.add_argument("--precisions", type=int, nargs="+", default=[12, 14, 16, 18, 20],
                   help="fractional bits (base 2)")
    p.add_argument("--parties", type=int, default=2)
    p.add_argument("--only", nargs="+", choices=list(accuracy.NAMES))
    p.add_argument("--iterations", type=int, nargs="+",
                   help="override every function's swept iteration values (one compile each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--plot", metavar="PNG")
    args = p.parse_args(argv)
    if args.write or args.check:
        return page_command(args)
    return sweep(args)


if __name__ == "__main__":
    jaxmpc.config.compilation_cache()  # a second run loads its compiled code
    out = main()
    sys.exit(out if isinstance(out, int) else 0)
