"""Catastrophic truncation failures per ring x fractional bits x truncation scheme x value magnitude:
the rate measured over many shared inputs beside the rate the scheme's analysis predicts
(jaxmpc.tasks.failures explains the cells, the inputs and the predictions).

    .venv/bin/python experiments/failure_map.py                      # table, 2 parties, 2^18 trials a cell
    .venv/bin/python experiments/failure_map.py --json failure_map.json --plot failure_map.png

The JSON holds ``{"command", "protocol", "n_parties", "records": [...]}``, one record per cell with
``ring``, ``fractional_bits``, ``truncation``, ``magnitude_bits``, ``trials``, ``failures``,
``measured_rate``, ``predicted_rate`` (and ``n_parties``, ``consistent``: within 5 binomial
standard deviations of the prediction).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import jaxmpc  # noqa: E402
from jaxmpc.protocols import interface  # noqa: E402
from jaxmpc.tasks import failures  # noqa: E402

FAMILY = interface.family("additive")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rings", type=int, nargs="+", default=list(FAMILY.rings), choices=FAMILY.rings,
                   help="ring widths in bits (the additive family's)")
    p.add_argument("--fractional-bits", type=int, nargs="+", default=[8, 12, 16, 20, 24])
    p.add_argument("--magnitude-bits", type=int, nargs="+", default=list(range(0, 47, 2)),
                   help="bits of the real value of the product being truncated (|v| in [2^(m-1), 2^m))")
    p.add_argument("--truncations", nargs="+", default=None, choices=FAMILY.truncations,
                   help="schemes (default: every scheme the family offers at --parties)")
    p.add_argument("--parties", type=int, default=2)
    p.add_argument("--trials", type=int, default=1 << 18, help="inputs per cell")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--plot", metavar="PATH", help="heatmap PNG: one panel per scheme and ring")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    jaxmpc.run.config.check(n_parties=args.parties)
    schemes = args.truncations or list(FAMILY.truncations_at(args.parties))
    for t in schemes:
        FAMILY.check_truncation(t, args.parties)
    key = jaxmpc.key(args.seed)
    records = []
    print(f"{'ring':>4} {'scheme':>10} {'frac':>4} {'mag':>4} {'trials':>8} {'failures':>8} "
          f"{'measured':>10} {'predicted':>10}")
    for ring_bits in args.rings:
        grid = failures.cells(args.fractional_bits, args.magnitude_bits, ring_bits)
        for t in schemes:
            key, k = jax.random.split(key)
            start = time.perf_counter()
            recs = failures.measure(k, t, grid, args.trials, n_parties=args.parties, ring_bits=ring_bits)
            for r in recs:
                r["consistent"] = bool(failures.consistent(r))
                if r["failures"] or r["predicted_rate"] * r["trials"] >= 0.5:
                    print(f"{r['ring']:>4} {t:>10} {r['fractional_bits']:>4} {r['magnitude_bits']:>4} "
                          f"{r['trials']:>8} {r['failures']:>8} {r['measured_rate']:>10.3g} "
                          f"{r['predicted_rate']:>10.3g}" + ("" if r["consistent"] else "  INCONSISTENT"))
            zero = sum(1 for r in recs if not r["failures"])
            print(f"{ring_bits:>4} {t:>10}: {len(recs)} cells, {zero} without failures, "
                  f"{time.perf_counter() - start:.1f} s")
            records += recs
    bad = [r for r in records if not r["consistent"]]
    print(f"{len(records)} cells; {len(bad)} outside 5 s.d. of the prediction")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": " ".join(["python"] + sys.argv), "protocol": "additive",
                       "n_parties": args.parties, "records": records}, f, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        plot(records, args.plot)
        print(f"wrote {args.plot}")
    return 1 if bad else 0


def plot(records, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    panels = sorted({(r["ring"], r["truncation"]) for r in records})
    fracs = sorted({r["fractional_bits"] for r in records})
    mags = sorted({r["magnitude_bits"] for r in records})
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), squeeze=False,
                             sharey=True)
    floor = min((r["measured_rate"] for r in records if r["failures"]), default=1e-6)
    for ax, (ring_bits, t) in zip(axes[0], panels):
        grid = np.full((len(fracs), len(mags)), np.nan)
        for r in records:
            if (r["ring"], r["truncation"]) == (ring_bits, t):
                grid[fracs.index(r["fractional_bits"]), mags.index(r["magnitude_bits"])] = (
                    r["measured_rate"] if r["failures"] else floor / 10)
        im = ax.imshow(grid, origin="lower", aspect="auto", norm=LogNorm(vmin=floor / 10, vmax=1),
                       extent=(mags[0] - 1, mags[-1] + 1, fracs[0] - 2, fracs[-1] + 2), cmap="magma_r")
        ax.set_title(f"{t}, Z_2^{ring_bits}", fontsize=9)
        ax.set_yticks(fracs)
    fig.supxlabel("magnitude bits of the product being truncated", fontsize=9)
    axes[0][0].set_ylabel("fractional bits")
    fig.colorbar(im, ax=axes[0].tolist(), label="measured failure rate (lightest: none)")
    fig.savefig(path, dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    sys.exit(main())
