"""The field's MNIST networks (jaxmpc.nn.models.NETWORKS): one encrypted training iteration and one
secure inference per network x party count, timed against plaintext float32 JAX in the same run,
with their rounds and bytes, beside the published per-iteration figures.

    .venv/bin/python experiments/networks.py --batch 32 --json networks.json
    .venv/bin/python experiments/networks.py --networks network-a lenet --parties 2 3 --batch 128

Each record: ``network``, ``protocol``, ``ring``, ``n_parties``, ``batch``, ``phase`` (train |
inference), ``seconds`` (median of ``--repeats`` jit-compiled calls after a warm-up, jaxmpc's XLA
options; plaintext with JAX's defaults, as in bench.py),
``plaintext_seconds``, ``ratio``, ``compile_seconds``, ``rounds``, ``mb_per_party`` (sent by each
party), ``dealer_mb_per_party``. A training iteration is forward, MSE loss, backward and an SGD
momentum update (fixed point base 2, 16 fractional bits, dealer truncation); inference is the forward
pass and a secure argmax that reveals only the labels. Inputs are random images of MNIST's shape:
costs and times do not depend on the pixel values.

The published figures printed beside (training, batch 128, 3 parties, communication summed over
the parties) are as quoted in issue #23 from Piranha (USENIX Security 2022, Table 4, on a GPU),
CryptGPU (S&P 2021, on GPUs) and Falcon (PETS 2021, on CPUs over a LAN); they were not re-checked
against the papers here.
"""
from __future__ import annotations

import argparse
import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import bench  # noqa: E402  (experiments/bench.py: timing and the machine record)
import common  # noqa: E402
import jaxmpc  # noqa: E402
from jaxmpc.nn import inference, losses, models, optim, training  # noqa: E402

PUBLISHED = {  # network: [(system, seconds per iteration, GB, where)], from issue #23
    "lenet": [("Piranha", 0.888, 0.417, "GPU"), ("CryptGPU", 2.21, 1.14, "GPU"),
              ("Falcon", 14.9, 0.346, "CPU, LAN")],
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", nargs="+", default=list(models.NETWORKS), choices=list(models.NETWORKS))
    p.add_argument("--parties", type=int, nargs="+", default=[2, 3])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    common.add_protocol_args(p)
    p.add_argument("--json", metavar="PATH")
    return p.parse_args(argv)


def _inputs(name: str, batch: int, rng):
    shape = (batch, 784) if name == "network-a" else (batch, 1, 28, 28)
    return rng.uniform(0, 1, shape), np.eye(10)[rng.integers(0, 10, batch)]


def bench_network(name: str, n: int, batch: int, repeats: int, protocol: str, ring: int) -> list[dict]:
    net = models.NETWORKS[name]()
    fxp = jaxmpc.FixedPoint(2, 16)
    k = jax.random.split(jaxmpc.key(7), 7)
    p0 = net.init(k[0])
    xb, yb = _inputs(name, batch, np.random.default_rng(7))
    share = lambda key, v: jaxmpc.share(key, v, fxp, n, protocol=protocol, ring=ring)  # noqa: E731
    params, x, y = share(k[1], p0), share(k[2], xb), share(k[3], yb)
    opt = optim.sgd(0.1, key=k[4], momentum=0.9)
    state = opt.init(params)

    def train_step(key, params, state, x, y):
        return training.step(key, net, losses.mse, opt, params, state, x, y)

    def infer(key, params, x):
        return inference.classify(key, net, params, x).shares

    popt = optax.sgd(0.1, momentum=0.9)
    p32 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), p0)
    x32, y32 = jnp.asarray(xb, jnp.float32), jnp.asarray(yb, jnp.float32)

    def plain_train(p, s, xb, yb):
        return training.plain_step(net, losses.mse_plain, popt, p, s, xb, yb)

    def plain_infer(p, xb):
        return jnp.argmax(net.plain(p, xb), axis=-1)

    cases = [("train", train_step, (k[5], params, state, x, y), plain_train, (p32, popt.init(p32), x32, y32)),
             ("inference", infer, (k[6], params, x), plain_infer, (p32, x32))]
    out = []
    for phase, fn, args, plain_fn, plain_args in cases:
        cost = jaxmpc.cost(fn, *args)
        s, c = bench.timed(fn, args, repeats, jaxmpc.config.compiler_options())
        p, _ = bench.timed(plain_fn, plain_args, repeats)
        rec = {"network": name, "protocol": protocol, "ring": ring, "n_parties": n, "batch": batch,
               "phase": phase, "seconds": s, "plaintext_seconds": p, "ratio": s / p, "compile_seconds": c,
               "rounds": cost.rounds, "mb_per_party": cost.bytes_per_party / 1e6,
               "dealer_mb_per_party": cost.dealer_bytes_per_party / 1e6}
        print(f"{name:>10} {n:>2} {phase:>9} {s:>9.3f} {p * 1e3:>9.2f} {s / p:>8.1f}x {c:>8.1f} "
              f"{cost.rounds:>6} {rec['mb_per_party']:>9.1f}", flush=True)
        out.append(rec)
    return out


def main(argv=None):
    args = parse_args(argv)
    for n in args.parties:
        common.check_config(n_parties=n, protocol=args.protocol, ring=args.ring)
    if args.batch < 1:
        sys.exit(f"--batch must be at least 1, got {args.batch}")
    machine = bench.machine_record(argv)
    print(f"jax {machine['jax']}, backend {machine['backend']}, {machine['cpus']} CPUs; batch {args.batch}, "
          f"{args.protocol} over Z_2^{args.ring}")
    print(f"{'network':>10} {'n':>2} {'phase':>9} {'s':>9} {'plain ms':>9} {'ratio':>9} {'compile':>8} "
          f"{'rounds':>6} {'MB/party':>9}")
    records = []
    for name in args.networks:
        for n in args.parties:
            records += bench_network(name, n, args.batch, args.repeats, args.protocol, args.ring)
    print("\npublished training iterations (batch 128, 3 parties, GB summed over the parties; issue #23):")
    for name, rows in PUBLISHED.items():
        ours = [r for r in records if r["network"] == name and r["phase"] == "train" and r["n_parties"] == 3]
        for system, sec, gb, where in rows:
            print(f"  {name}: {system} {sec} s, {gb} GB ({where})")
        for r in ours:
            print(f"  {name}: jaxmpc (simulated, one process, {machine['backend']}, batch {r['batch']}) "
                  f"{r['seconds']:.3f} s compute, {r['mb_per_party'] * 3 / 1e3:.3f} GB sent by the 3 parties, "
                  f"{r['rounds']} rounds (network time not simulated)")
    if args.json:
        common.write_json(args.json, {"machine": machine, "config": vars(args), "records": records})


if __name__ == "__main__":
    main()
