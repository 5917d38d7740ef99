"""The seed demo: PySyft's encrypted-training tutorial, reproduced and swept in one compiled call.

Two parties (or --parties N) hold shares of the data, targets and a 2-2-1 ReLU network; a dealer
supplies Beaver triples and truncation material. Every precision (and every seed, --seeds K) is one
simulated run, and all runs are a single jit-compiled, vmapped function.

    .venv/bin/python experiments/seed_demo.py             # base 10, precisions 2 3 4
    .venv/bin/python experiments/seed_demo.py --seeds 16 --plot seed.png --json seed.json
"""
from __future__ import annotations

import argparse
import json
import os
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402  (experiments/common.py, a sibling module)
import jaxmpc  # noqa: E402
from jaxmpc.tasks import tutorial  # noqa: E402

REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "reference",
                         "seed_plaintext_losses.json")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parties", type=int, default=None,
                   help="number of data-holding parties (default: 2, or 3 for --protocol replicated)")
    common.add_protocol_args(p)
    p.add_argument("--seeds", type=int, default=1, help="share/dealer seeds per precision (vmapped)")
    p.add_argument("--seed", type=int, default=0, help="root PRNG seed")
    p.add_argument("--base", type=int, default=10, choices=(2, 10))
    p.add_argument("--precisions", type=int, nargs="+", default=[2, 3, 4])
    p.add_argument("--iterations", type=int, default=tutorial.ITERATIONS)
    p.add_argument("--truncation", default="default", choices=common.truncations(),
                   help="truncation scheme: default (the family's own); additive "
                        "(jaxmpc.protocols.additive.truncation): dealer (its default), pair, exact, "
                        "fixed-mask (insecure, audits only) at any party count, local at 2; replicated: "
                        "share (jaxmpc.protocols.replicated.truncation)")
    p.add_argument("--rounding", default="nearest", choices=("nearest", "trunc"),
                   help="encoding rounding; 'trunc' truncates toward zero like PySyft")
    p.add_argument("--json", metavar="PATH", help="write losses as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG of the loss curves")
    args = p.parse_args(argv)
    args.parties = common.default_parties(args.protocol, args.parties)
    return args


def main(argv=None):
    args = parse_args(argv)
    common.check_config(n_parties=args.parties, truncation=args.truncation, base=args.base,
                        precisions=args.precisions, protocol=args.protocol, ring=args.ring)
    static = {"base": args.base, "n_parties": args.parties, "truncation": args.truncation,
              "rounding": args.rounding, "protocol": args.protocol, "ring": args.ring}

    def one(key, precision):
        return tutorial.run(key, precision, iterations=args.iterations, **static)

    # seeds (outer) x precisions (inner), one compiled function; every run gets its own key
    runs = jaxmpc.config.jit(jax.vmap(jax.vmap(one, (0, 0)), (0, None)))
    keys = jax.random.split(jaxmpc.key(args.seed), (args.seeds, len(args.precisions)))
    precisions = jnp.asarray(args.precisions, jnp.int32)

    t0 = time.perf_counter()
    compiled = runs.lower(keys, precisions).compile()
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    enc = np.asarray(jax.block_until_ready(compiled(keys, precisions)))  # [seeds, precisions, iters]
    t_run = time.perf_counter() - t0
    plain = tutorial.plaintext_losses(args.iterations)

    n_runs = args.seeds * len(args.precisions)
    helper = " + dealer" if args.protocol == "additive" else ", no dealer"
    print(f"jaxmpc seed demo: {args.parties} parties{helper}, {args.protocol} protocol over "
          f"Z_2^{args.ring}, base {args.base}, "
          f"{args.truncation} truncation, {args.seeds} seed(s), {n_runs} runs in one vmapped call")
    print(f"compile {t_compile:.2f} s, run {t_run:.3f} s ({jax.default_backend()})\n")
    head = f"{'iter':>4} {'plaintext':>10}" + "".join(f" {'p=' + str(p):>10}" for p in args.precisions)
    print(head + ("   (encrypted: mean over seeds)" if args.seeds > 1 else "   (encrypted)"))
    for i in range(args.iterations):
        row = f"{i:>4} {plain[i]:>10.5f}" + "".join(f" {enc[:, j, i].mean():>10.5f}"
                                                    for j in range(len(args.precisions)))
        print(row)
    print("\ndeviation from plaintext  |encrypted - plaintext|")
    print(f"{'precision':>9} {'mean':>10} {'max':>10}")
    dev = np.abs(enc - plain[None, None, :])
    for j, p in enumerate(args.precisions):
        print(f"{p:>9} {dev[:, j].mean():>10.5f} {dev[:, j].max():>10.5f}")

    # communication of one training iteration (traced from the code that runs; nothing executes)
    step_cost = jaxmpc.cost(lambda k: tutorial.run(k, args.precisions[0], iterations=1, **static),
                            jaxmpc.key(0))
    print(f"\ncost per training step ({args.parties} parties, loss reveal included): "
          f"{step_cost.rounds} rounds, {step_cost.bytes_per_party:,.0f} bytes sent per party, "
          f"{step_cost.dealer_bytes_per_party:,.0f} bytes of dealer material per party")
    print(f"estimated network time per step (a model, not a measurement): "
          f"LAN {step_cost.estimate(jaxmpc.LAN) * 1e3:.2f} ms, WAN {step_cost.estimate(jaxmpc.WAN):.2f} s")

    if os.path.exists(REFERENCE) and args.iterations == tutorial.ITERATIONS:
        with open(REFERENCE) as f:
            ref = np.array(json.load(f)["plaintext_float64_losses"])
        print(f"\nplaintext vs shared/reference: max |diff| = {np.abs(ref - plain).max():.2e}")

    if args.json:
        out = {**common.protocol_fields(args), "plaintext": plain.tolist(),
               "encrypted": {str(p): enc[:, j].tolist() for j, p in enumerate(args.precisions)},
               "config": {k: v for k, v in vars(args).items() if k not in ("json", "plot")},
               "compile_seconds": t_compile, "run_seconds": t_run,
               "cost_per_step": step_cost.to_dict()}
        common.write_json(args.json, out)
    if args.plot:
        plot(args, plain, enc, args.plot)
        print(f"wrote {args.plot}")
    return plain, enc


def plot(args, plain, enc, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax_dev) = plt.subplots(1, 2, figsize=(11, 4))
    it = np.arange(len(plain))
    ax.plot(it, plain, "k-", lw=2, label="plaintext float64")
    dev = np.abs(enc - plain[None, None, :])
    for j, p in enumerate(args.precisions):
        line, = ax.plot(it, enc[:, j].mean(0), "--", label=f"encrypted, precision {p}")
        ax_dev.plot(it, dev[:, j].mean(0), color=line.get_color(), label=f"precision {p}")
        if enc.shape[0] > 1:
            ax.fill_between(it, enc[:, j].min(0), enc[:, j].max(0), color=line.get_color(), alpha=0.2)
            ax_dev.fill_between(it, dev[:, j].min(0), dev[:, j].max(0), color=line.get_color(), alpha=0.2)
    ax.set(xlabel="iteration", ylabel="loss (sum of squared errors)", yscale="log",
           title=f"seed task, base {args.base}, {args.parties} parties")
    ax_dev.set(xlabel="iteration", ylabel="|encrypted - plaintext|", yscale="log",
               title=f"deviation ({enc.shape[0]} seed(s): mean, band = min..max)")
    ax.legend()
    ax_dev.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    jaxmpc.config.compilation_cache()  # a second run loads its compiled code
    main()
