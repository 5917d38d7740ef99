"""What truncation failures do to training: test accuracy of the digits MLP against fractional bits,
one line per truncation scheme and ring, each line ONE vmapped sweep (experiments/sweep.py) over
precisions x seeds.

    .venv/bin/python experiments/truncation_accuracy.py --json trunc_acc.json --plot trunc_acc.png
    .venv/bin/python experiments/truncation_accuracy.py --truncations pair dealer --bits 8 16 24 --seeds 2

Base 2, fractional bits ``--bits`` (default 8, 10, ..., 24), ``--seeds`` seeds each (a seed fixes the
initial weights and the batch order, shared by every scheme, so the lines differ only by the
truncation), ``--epochs`` epochs of minibatch SGD; on Z_2^32 only the bits it can encode (at most
14: ``n/a`` in the table above that). The JSON holds ``{"command", "config",
"records": [...]}``, one record per (truncation, ring, fractional_bits) with the mean and worst test
accuracy over the seeds and the plaintext twin's mean.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import common
import sweep
from jaxmpc.core.fixedpoint import max_precision

FAMILY_TRUNCATIONS = ("dealer", "pair", "fixed-mask", "exact")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--truncations", nargs="+", default=["dealer", "pair", "fixed-mask"],
                   choices=FAMILY_TRUNCATIONS)
    p.add_argument("--rings", type=int, nargs="+", default=[64], help="ring widths (each must be supported)")
    p.add_argument("--bits", type=int, nargs="+", default=list(range(8, 25, 2)), help="fractional bits")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--task", default="digits", choices=("digits", "breast_cancer"))
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--plot", metavar="PATH")
    return p.parse_args(argv)


def ring_bits_run(args, ring: int) -> list[int]:
    """The fractional bits of ``--bits`` that the ring can encode (Z_2^32: at most 14)."""
    return [b for b in args.bits if b <= max_precision(2, ring)]


def run_one(args, truncation: str, ring: int) -> list[dict]:
    """One vmapped sweep of the grid with one scheme; its summary rows as records."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sweep.json")
        sweep.main(["--task", args.task, "--base", "2", "--precisions", *map(str, ring_bits_run(args, ring)),
                    "--seeds", str(args.seeds), "--epochs", str(args.epochs), "--truncation", truncation,
                    "--ring", str(ring), "--baseline-points", "1", "--quiet", "--json", path])
        with open(path) as f:
            data = json.load(f)
    return [{"truncation": truncation, "ring": ring, "fractional_bits": row["precision"],
             "seeds": row["runs"], "test_accuracy_mean": row["test_accuracy"]["mean"],
             "test_accuracy_worst": row["test_accuracy"]["worst"],
             "plaintext_test_accuracy_mean": row["plaintext_test_accuracy"]["mean"]}
            for row in data["summary"]]


def main(argv=None):
    args = parse_args(argv)
    for ring in args.rings:
        common.check_config(n_parties=2, ring=ring)
        if not ring_bits_run(args, ring):
            sys.exit(f"invalid options: Z_2^{ring} encodes at most {max_precision(2, ring)} fractional bits; "
                     f"--bits {args.bits} has none of them")
    records = []
    for ring in args.rings:
        for t in args.truncations:
            records += run_one(args, t, ring)
    print(f"\n{'scheme':>10} {'ring':>4} " + " ".join(f"{b:>6}" for b in args.bits))
    for ring in args.rings:
        for t in args.truncations:
            accs = {r["fractional_bits"]: r["test_accuracy_mean"] for r in records
                    if r["truncation"] == t and r["ring"] == ring}
            print(f"{t:>10} {ring:>4} " + " ".join(f"{accs[b]:6.3f}" if b in accs else f"{'n/a':>6}"
                                                    for b in args.bits))
    plain = {r["fractional_bits"]: r["plaintext_test_accuracy_mean"] for r in records}
    print(f"{'plaintext':>10} {'':>4} " + " ".join(f"{plain[b]:6.3f}" if b in plain else f"{'n/a':>6}"
                                               for b in args.bits))
    if args.json:
        common.write_json(args.json, {"command": " ".join(["python"] + sys.argv), "config": vars(args),
                                      "records": records})
    if args.plot:
        plot(args, records, args.plot)
        print(f"wrote {args.plot}")


def plot(args, records, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for ring in args.rings:
        for t in args.truncations:
            rows = sorted((r for r in records if r["truncation"] == t and r["ring"] == ring),
                          key=lambda r: r["fractional_bits"])
            ax.plot([r["fractional_bits"] for r in rows], [r["test_accuracy_mean"] for r in rows], "o-",
                    label=f"{t}, Z_2^{ring}")
    rows = sorted({r["fractional_bits"]: r for r in records}.values(), key=lambda r: r["fractional_bits"])
    ax.plot([r["fractional_bits"] for r in rows], [r["plaintext_test_accuracy_mean"] for r in rows], "k--",
            label="plaintext twin")
    ax.set_xlabel("fractional bits (base 2)")
    ax.set_ylabel(f"test accuracy ({args.task}, mean of {args.seeds} seeds)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    main()
