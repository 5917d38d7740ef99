"""Reliability, measured: truncation failure rates and errors, long training runs, determinism.

Four parts (``--parts``), each printed as a table and written to ``--json``:

a. Local (SecureML, 2-party) truncation fails when the two signed shares overflow: probability
   (|x| + 1) / 2^64 per element. Measured on crafted inputs (``--trials`` fresh sharings of each
   |x| from 2^56 to 3 * 2^61), counted by jaxmpc.trace.diagnostics and checked against the opened
   results, with exact (Clopper-Pearson) 95% binomial intervals.
b. Dealer truncation's error distribution (3 parties) for base-10 and base-2 divisors on uniform
   values |x| < 2^61: histogram in units, mean (unbiased?), max (< 1.5 units base 10, < 1 base 2);
   local truncation in range (|x| < 2^40) for comparison.
c. The seed task (jaxmpc.tasks.tutorial) for ``--iterations`` (5000) steps at base 10, precisions 4, 3 and 2,
   ``--seeds`` runs each in one vmapped call with per-step diagnostics, against float64 plaintext
   training: deviation per window of iterations, final losses, and what the diagnostics show
   (wrap-around, truncation failures, headroom used, underflows per window).
d. Determinism: the same keys give bit-identical shares (and diagnostics) under jit and without it
   (jax.disable_jit) and from one call to the next; SHA-256 digests (also of part c's losses) to
   compare across processes and machines.

    .venv/bin/python experiments/reliability.py --json reliability.json     # everything
    .venv/bin/python experiments/reliability.py --parts c --seeds 8

Parts c and d share their values under ``--protocol`` over ``--ring``; parts a and b measure the
additive family's truncation kernels (``jaxmpc.truncate_shares``) on additive shares.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import math
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402  (experiments/common.py, a sibling module)
import jaxmpc  # noqa: E402
from jaxmpc import diagnostics  # noqa: E402
from jaxmpc.core import ring  # noqa: E402
from jaxmpc.nn import losses  # noqa: E402
from jaxmpc.tasks import tutorial  # noqa: E402

PARTS = ("a", "b", "c", "d")
LOCAL_X = [1 << 56, 1 << 58, 1 << 60, -(1 << 60), 1 << 61, 1 << 62, -(1 << 62), 3 << 61]
LOCAL_D = 1 << 16
DEALER_CASES = [("base 10, p=2", 10**2), ("base 10, p=3", 10**3), ("base 10, p=4", 10**4),
                ("base 2, p=8", 1 << 8), ("base 2, p=16", 1 << 16)]
HIST_EDGES = np.linspace(-1.5, 1.5, 13)  # quarter-unit bins
WINDOWS = [(0, 20), (20, 100), (100, 1000), (1000, 5000)]
ADDITIVE = {"protocol": "additive", "ring": 64}  # --protocol / --ring defaults


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    p.add_argument("--trials", type=int, default=1 << 20, help="(a) sharings per |x|")
    p.add_argument("--samples", type=int, default=1 << 20, help="(b) values per divisor")
    p.add_argument("--iterations", type=int, default=5000, help="(c) training steps")
    p.add_argument("--seeds", type=int, default=4, help="(c) runs per precision (vmapped)")
    p.add_argument("--precisions", type=int, nargs="+", default=[4, 3, 2], help="(c) base-10 precisions")
    common.add_protocol_args(p)
    p.add_argument("--seed", type=int, default=0, help="root PRNG seed")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = p.parse_args(argv)
    for name in ("trials", "samples", "iterations", "seeds"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    try:
        jaxmpc.config.check(n_parties=2, base=10, precisions=args.precisions, protocol=args.protocol,
                            ring=args.ring)
    except jaxmpc.JaxMPCError as e:
        p.error(str(e))
    return args


def _table(head, rows) -> str:
    cells = [tuple(head)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    line = lambda c: "  ".join(c[0].ljust(widths[0]) if i == 0 else c[i].rjust(widths[i])  # noqa: E731
                               for i in range(len(head)))
    return "\n".join([line(cells[0]), "-" * len(line(cells[0]))] + [line(c) for c in cells[1:]])


def _clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    from scipy.stats import beta
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def _signed_exp(x: int) -> str:
    """x as (-)2^e or (-)m*2^e."""
    s, m = ("-" if x < 0 else ""), abs(x)
    e = m.bit_length() - 1
    return f"{s}2^{e}" if m == 1 << e else f"{s}{m >> (e - 1)}*2^{e - 1}"


# ---- (a) local truncation failure rate ------------------------------------------------------------
def _truncate(key, x, d, n_parties: int, method: str, trials: int):
    """``trials`` fresh sharings of the raw ring value ``x``, truncated by ``d``; opened result."""
    k_share, k_trunc = jax.random.split(key)
    v = ring.from_signed(jnp.broadcast_to(x, (trials,)))
    y = jaxmpc.truncate_shares(k_trunc, ring.share_value(k_share, v, n_parties), d, method)
    return ring.to_signed(ring.party_sum(y))


def local_failure_rate(key, trials: int) -> dict:
    fn = jax.jit(jax.vmap(diagnostics.run(functools.partial(
        _truncate, d=jnp.uint64(LOCAL_D), n_parties=2, method="local", trials=trials))))
    xs = jnp.asarray(LOCAL_X, jnp.int64)
    y, rep = fn(jax.random.split(key, len(LOCAL_X)), xs)
    y, counted = np.asarray(y), np.asarray(rep["truncate/local"].failures)
    rows, out = [], []
    for i, x in enumerate(LOCAL_X):
        off = y[i] - x // LOCAL_D  # the ground truth: off by 2^64/d = 2^48 when it failed
        failed = (off < 0) | (off > 1)
        assert int(failed.sum()) == int(counted[i]), (x, failed.sum(), counted[i])  # diagnostics agree
        assert np.all(np.abs(off[failed]) == 1 << 48)
        k = int(counted[i])
        p = (abs(x) + 1) / 2.0**64
        lo, hi = _clopper_pearson(k, trials)
        out.append({"x": str(x), "log2_abs_x": math.log2(abs(x)), "trials": trials, "failures": k,
                    "rate": k / trials, "ci95": [lo, hi], "formula": p, "formula_in_ci": lo <= p <= hi})
        rows.append((_signed_exp(x), f"{trials:,}", f"{k:,}", f"{k / trials:.5f}", f"[{lo:.5f}, {hi:.5f}]",
                     f"{p:.5f}", f"{k / trials / p:.3f}", "yes" if lo <= p <= hi else "NO"))
    print("(a) local (2-party) truncation by d = 2^16: failure rate vs (|x|+1)/2^64 "
          "(counted by jaxmpc.diagnostics; each failure is off by exactly 2^64/d)")
    print(_table(("x", "trials", "failures", "rate", "95% CI (exact)", "formula", "ratio", "in CI"), rows))
    return {"divisor": LOCAL_D, "rows": out}


# ---- (b) dealer truncation error distribution -----------------------------------------------------
def _truncate_values(key, v, d, n_parties: int, method: str):
    k_share, k_trunc = jax.random.split(key)
    y = jaxmpc.truncate_shares(k_trunc, ring.share_value(k_share, ring.from_signed(v), n_parties), d, method)
    return ring.to_signed(ring.party_sum(y))


def dealer_error_distribution(key, samples: int) -> dict:
    rng = np.random.default_rng(1)
    cases = [(name, d, "dealer", 3, 1 << 61) for name, d in DEALER_CASES]
    cases += [("local, base 10, p=4", 10**4, "local", 2, 1 << 40), ("local, base 2, p=16", 1 << 16, "local", 2, 1 << 40)]
    fns = {}
    rows, hist_rows, out = [], [], []
    keys = jax.random.split(key, len(cases))
    for (name, d, method, n, bound), k in zip(cases, keys):
        if (method, n) not in fns:  # d is array data: one compile per method
            fns[method, n] = jax.jit(diagnostics.run(functools.partial(_truncate_values, n_parties=n, method=method)))
        x = rng.integers(-bound, bound, size=samples, dtype=np.int64)
        y, rep = fns[method, n](k, jnp.asarray(x), jnp.uint64(d))
        y = np.asarray(y)
        err = ((y * d - x).astype(np.float64)) / d  # y*d - x is small: exact in int64
        stats = rep[f"truncate/{method}"]
        fails = int(stats.failures)
        hist = np.histogram(err, HIST_EDGES)[0] / samples
        mean, sd = float(err.mean()), float(err.std())
        limit = 1.0 if (method == "local" or d & (d - 1) == 0) else 1.5
        out.append({"case": name, "divisor": d, "method": method, "n_parties": n, "samples": samples,
                    "mean": mean, "stderr": sd / math.sqrt(samples), "std": sd, "min": float(err.min()),
                    "max": float(err.max()), "max_abs": float(np.abs(err).max()), "bound": limit,
                    "within_bound": bool(np.abs(err).max() < limit), "p_abs_ge_1": float(np.mean(np.abs(err) >= 1)),
                    "failures": fails, "histogram": {"edges": HIST_EDGES.tolist(), "fraction": hist.tolist()}})
        rows.append((name, n, f"{samples:,}", f"{mean:+.4f} +- {sd / math.sqrt(samples):.4f}", f"{sd:.3f}",
                     f"{err.min():+.3f}", f"{err.max():+.3f}", f"< {limit:g}: {'yes' if np.abs(err).max() < limit else 'NO'}",
                     f"{np.mean(np.abs(err) >= 1):.4f}", fails))
        hist_rows.append((name,) + tuple(f"{h:.3f}" for h in hist))
    print("\n(b) truncation error y - x/d in units, x uniform (dealer |x| < 2^61, local |x| < 2^40)")
    print(_table(("case", "parties", "samples", "mean +- s.e.", "std", "min", "max", "bound", "P(|e|>=1)",
                  "failures"), rows))
    print("histogram (fraction per quarter unit, from -1.5 to 1.5):")
    print(_table(("case",) + tuple(f"{a:+.2f}" for a in HIST_EDGES[:-1]), hist_rows))
    return {"rows": out}


# ---- (c) the seed task, long -----------------------------------------------------------------------
def plaintext_losses(iterations: int):
    """float64 plaintext training as one lax.scan (tutorial.plaintext_losses is a Python loop); also
    the gradients, to say how large lr * gradient is compared with one fixed-point unit."""
    net = tutorial.model()

    def loss(p):
        return losses.sse_plain(net.plain(p, tutorial.DATA), tutorial.TARGET)

    def body(p, _):
        value, g = jax.value_and_grad(loss)(p)
        return jax.tree_util.tree_map(lambda w, d: w - tutorial.LEARNING_RATE * d, p, g), (value, g)

    p0 = jax.tree_util.tree_map(jnp.asarray, tutorial.INIT)
    _, (values, grads) = jax.jit(lambda p: jax.lax.scan(body, p, None, length=iterations))(p0)
    flat = jnp.concatenate([g.reshape(iterations, -1) for g in jax.tree_util.tree_leaves(grads)], axis=1)
    return np.asarray(values), np.asarray(flat)


def _windows(iterations: int):
    out = [(a, min(b, iterations)) for a, b in WINDOWS if a < iterations]
    if iterations > WINDOWS[-1][1]:
        out.append((WINDOWS[-1][1], iterations))
    return out


def seed_long(key, iterations: int, seeds: int, precisions: list[int], protocol: dict = ADDITIVE) -> dict:
    plain, grads = plaintext_losses(iterations)
    np.testing.assert_allclose(plain[:tutorial.ITERATIONS], tutorial.plaintext_losses(min(iterations, tutorial.ITERATIONS)),
                               atol=1e-12)  # the scan is the same oracle
    one = diagnostics.run(functools.partial(tutorial.run, iterations=iterations, **protocol), per_step=True)
    fn = jax.jit(jax.vmap(jax.vmap(one, (0, 0)), (0, None)))  # seeds x precisions
    keys = jax.random.split(key, (seeds, len(precisions)))
    t0 = time.perf_counter()
    enc, rep = fn(keys, jnp.asarray(precisions, jnp.int32))
    enc = np.asarray(jax.block_until_ready(enc))
    seconds = time.perf_counter() - t0
    windows = _windows(iterations)
    print(f"\n(c) seed task, {iterations} iterations, base 10, 2 parties, dealer truncation, {seeds} seed(s) "
          f"per precision (one vmapped call with per-step diagnostics: {seconds:.1f} s incl. compile)")
    print("plaintext float64 loss: " + ", ".join(f"it {i}: {plain[i]:.3g}" for i in
                                                  sorted({0, 19, 99, 999, iterations - 1}) if i < iterations))
    out = {"iterations": iterations, "seeds": seeds, "plaintext_final": float(plain[-1]),
           "seconds_incl_compile": seconds, "sha256_losses": _digest(enc), "precisions": {}}
    rows = []
    for j, p in enumerate(precisions):
        unit = 10.0**-p
        dev = np.abs(enc[:, j] - plain[None])
        r = jax.tree_util.tree_map(lambda a: np.asarray(a)[:, j], rep)
        total = r.total()
        step = np.abs(tutorial.LEARNING_RATE * grads)  # plaintext lr * gradient, to compare with the unit
        res = {"unit": unit, "final_losses": enc[:, j, -1].tolist(), "wraps": total["wraps"],
               "failures": total["failures"], "elements_checked": total["elements"],
               "max_bits": math.log2(total["max_abs"]) if total["max_abs"] else None,
               "first_iteration_off_by_10_units": [int(np.argmax(d > 10 * unit)) if (d > 10 * unit).any()
                                                   else -1 for d in dev],
               "windows": [], "diagnostics": r.to_dict()}
        # the worst deviation, and what the diagnostics saw around it (+-5 iterations, that run)
        i, t = np.unravel_index(int(np.argmax(dev)), dev.shape)
        lo, hi = max(int(t) - 5, 0), min(int(t) + 6, iterations)
        around = jax.tree_util.tree_map(lambda a: np.asarray(a)[i], r.window(lo, hi))
        sgd = "sgd/truncate/dealer"
        res["worst"] = {"run": int(i), "iteration": int(t), "abs_diff": float(dev[i, t]),
                        "loss": float(enc[i, j, t]), "plaintext": float(plain[t]),
                        "losses_around": enc[i, j, lo:hi].tolist(), "wraps_around": int(sum(
                            around[n].wraps for n in around.names())),
                        "failures_around": int(sum(around[n].failures for n in around.names())),
                        "sgd_underflow_around": float(around[sgd].underflows / max(around[sgd].elements, 1))
                        if sgd in around else None,
                        "largest_sgd_update_units_around": float(around[sgd].max_abs) / 10**p
                        if sgd in around else None}
        for a, b in windows:
            w = r.window(a, b)
            under = {n: float(np.sum(w[n].underflows) / max(np.sum(w[n].elements), 1)) for n in w.names()
                     if n.endswith(("truncate/dealer", "truncate/local"))}
            res["windows"].append({
                "start": a, "stop": b, "max_abs_diff": float(dev[:, a:b].max()),
                "mean_abs_diff": float(dev[:, a:b].mean()), "mean_loss": float(enc[:, j, a:b].mean()),
                "mean_plaintext_loss": float(plain[a:b].mean()),
                "fraction_off_by_more_than_1.5_units": float(np.mean(dev[:, a:b] > 1.5 * unit)),
                "underflow": under,
                "largest_sgd_update_units": float(np.max(w[sgd].max_abs)) / 10**p if sgd in w else None,
                "plaintext_updates_below_half_unit": float(np.mean(step[a:b] < unit / 2))})
            wd = res["windows"][-1]
            rows.append((p, f"{a}-{b}", f"{wd['max_abs_diff']:.2g}", f"{wd['max_abs_diff'] / unit:.1f}",
                         f"{wd['mean_loss']:.2g}", f"{100 * wd['fraction_off_by_more_than_1.5_units']:.1f}%",
                         " / ".join(f"{100 * under.get(n, float('nan')):.0f}%" for n in
                                    ("matmul/truncate/dealer", sgd, "square_sum/truncate/dealer")),
                         f"{wd['largest_sgd_update_units']:.0f}" if wd["largest_sgd_update_units"] is not None else "-",
                         f"{100 * wd['plaintext_updates_below_half_unit']:.0f}%"))
        out["precisions"][str(p)] = res
    print(_table(("prec", "iterations", "max |diff|", "units", "mean loss", "off >1.5u",
                  "underflow matmul/sgd/loss", "max sgd upd (u)", "plain |lr g|<u/2"), rows))
    for p in precisions:
        res = out["precisions"][str(p)]
        late = res["windows"][-1]
        print(f"precision {p} (unit {res['unit']:g}): final losses {', '.join(f'{v:.3g}' for v in res['final_losses'])}"
              f" (plaintext {plain[-1]:.3g}). Diagnostics: {res['wraps']} wraps and {res['failures']} truncation "
              f"failures in {res['elements_checked']:,} checked elements; largest value 2^{res['max_bits']:.1f}, "
              f"{62 - res['max_bits']:.0f} bits below the 2^62 headroom (not an overflow problem). Iterations "
              f"{late['start']}-{late['stop']}: {100 * late['underflow'].get('sgd/truncate/dealer', 0):.0f}% of the SGD "
              f"updates and {100 * late['underflow'].get('square_sum/truncate/dealer', 0):.0f}% of the losses are "
              f"below one unit (rounded stochastically to 0 or +-1 unit), the largest SGD update is "
              f"{late['largest_sgd_update_units']:.0f} units; mean loss {late['mean_loss']:.2g} vs plaintext "
              f"{late['mean_plaintext_loss']:.2g}.")
        w = res["worst"]
        print(f"    worst deviation: run {w['run']}, iteration {w['iteration']}: loss {w['loss']:.3g} vs "
              f"{w['plaintext']:.3g}; around it (+-5 iterations) {w['wraps_around']} wraps, "
              f"{w['failures_around']} failures, {100 * (w['sgd_underflow_around'] or 0):.0f}% of SGD updates "
              f"below one unit, largest update {w['largest_sgd_update_units_around'] or 0:.0f} units.")
    print(f"sha256 of the encrypted losses: {out['sha256_losses'][:16]}... (same keys: same bits)")
    for j, p in enumerate(precisions):
        print(f"\ndiagnostics at precision {p}:")
        print(jax.tree_util.tree_map(lambda a: np.asarray(a)[:, j], rep).summary())
    return out


# ---- (d) determinism -------------------------------------------------------------------------------
def _chain(key, x, w, protocol: str = "additive", ring_bits: int = 64):
    """Beaver matmul (local truncation), mul, ReLU (comparison circuit in an accounting.scan),
    a public division (dealer truncation): every share, plus diagnostics."""
    fxp = jaxmpc.FixedPoint(10, 4)
    k = jax.random.split(key, 6)
    xs = jaxmpc.share(k[0], x, fxp, protocol=protocol, ring=ring_bits)
    ws = jaxmpc.share(k[1], w, fxp, protocol=protocol, ring=ring_bits)
    h = jaxmpc.matmul(k[2], xs, ws, truncation="local")
    p = jaxmpc.mul(k[3], h, h)
    r, _ = jaxmpc.relu(k[4], p - 1.0)
    t = jaxmpc.div_public(k[5], r, 3)
    return {"matmul": h.shares, "mul": p.shares, "relu": r.shares, "div": t.shares}


def _digest(tree) -> str:
    h = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(tree):
        h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()


def determinism(seed_value: int, protocol: dict = ADDITIVE) -> dict:
    """The chain with the same key: jit twice and without jit (jax.disable_jit), compared bit for bit
    (shares and diagnostics); a different key must give different shares."""
    x = np.array([[0.5, -1.25], [3.0, 0.125]])  # one shape: without jit every primitive compiles per shape
    w = np.array([[1.5, -0.5], [0.25, 2.0]])
    run = diagnostics.run(functools.partial(_chain, protocol=protocol["protocol"], ring_bits=protocol["ring"]))
    fast = jax.jit(run)
    a = fast(jaxmpc.key(seed_value), x, w)
    b = fast(jaxmpc.key(seed_value), x, w)
    with jax.disable_jit():
        c = run(jaxmpc.key(seed_value), x, w)
    other = fast(jaxmpc.key(seed_value + 1), x, w)

    def same(u, v):
        lu, lv = jax.tree_util.tree_leaves(u), jax.tree_util.tree_leaves(v)
        return len(lu) == len(lv) and all(np.array_equal(np.asarray(p), np.asarray(q)) for p, q in zip(lu, lv))

    res = {"jit_vs_jit": same(a, b), "jit_vs_no_jit": same(a[0], c[0]),
           "diagnostics_jit_vs_no_jit": same(a[1], c[1]) and a[1].names() == c[1].names(),
           "other_key_differs": not any(np.array_equal(np.asarray(a[0][k]), np.asarray(other[0][k])) for k in a[0]),
           "diagnostics_clean": bool(a[1].ok),
           # and the chain is right: relu((x w)^2 - 1) / 3
           "max_error": float(np.abs(np.asarray(jaxmpc.reveal(jaxmpc.Shared(a[0]["div"], jaxmpc.FixedPoint(10, 4))))
                                     - np.maximum((x @ w) ** 2 - 1.0, 0.0) / 3).max()),
           "bits_compared": int(sum(np.asarray(v).size * 64 for v in a[0].values())),
           "digest_shares": _digest(a[0])}
    flags = ("jit_vs_jit", "jit_vs_no_jit", "diagnostics_jit_vs_no_jit")
    print("\n(d) determinism, matmul (local truncation) -> mul -> relu -> div_public, same keys: "
          + ", ".join(f"{k} {'identical' if res[k] else 'DIFFERENT'}" for k in flags)
          + f"; another key gives other shares: {res['other_key_differs']}")
    print(f"    {res['bits_compared']} share bits; sha256 {res['digest_shares'][:16]}... "
          "(compare across processes and machines; part c prints one of its losses)")
    return res


def main(argv=None):
    args = parse_args(argv)
    k_a, k_b, k_c = jax.random.split(jaxmpc.key(args.seed), 3)
    proto = common.protocol_fields(args)
    out = {"config": {k: v for k, v in vars(args).items() if k != "json"}, **proto,
           "backend": jax.default_backend()}
    if "a" in args.parts:
        out["local_failure_rate"] = local_failure_rate(k_a, args.trials)
    if "b" in args.parts:
        out["truncation_error"] = dealer_error_distribution(k_b, args.samples)
    if "c" in args.parts:
        out["seed_task"] = seed_long(k_c, args.iterations, args.seeds, args.precisions, proto)
    if "d" in args.parts:
        out["determinism"] = determinism(args.seed, proto)
    if args.json:
        common.write_json(args.json, out)
    return out


if __name__ == "__main__":
    jaxmpc.config.compilation_cache()  # a second run loads its compiled code
    main()
