"""The seed task (PySyft's encrypted-training tutorial) against float64 plaintext training."""
import functools
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc.nn import losses
from jaxmpc.tasks import tutorial

SEEDS = 8
PRECISIONS = (2, 3, 4)


@functools.lru_cache(maxsize=None)
def _sweep(n_parties: int):
    """Losses float64[seeds, precisions, 20] from one compiled, vmapped call (shared by tests)."""
    run = functools.partial(tutorial.run, n_parties=n_parties)
    runs = jax.jit(jax.vmap(jax.vmap(run, (0, 0)), (0, None)))  # a fresh key for every run
    keys = jax.random.split(jaxmpc.key(2024 + n_parties), (SEEDS, len(PRECISIONS)))
    return np.asarray(runs(keys, jnp.asarray(PRECISIONS, jnp.int32)))


def test_plaintext_oracle_matches_reference():
    ref = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference",
                       "seed_plaintext_losses.json")
    want = [1.94699, 1.15185, 0.92800]  # stated in seed_task.md
    got = tutorial.plaintext_losses()
    np.testing.assert_allclose(got[:3], want, atol=1e-5)
    assert got[18] > got[17]  # lr 0.1 on a summed loss oscillates: iteration 19 rises
    if os.path.exists(ref):  # the full reference ships beside the repository
        with open(ref) as f:
            np.testing.assert_allclose(got, json.load(f)["plaintext_float64_losses"], atol=1e-12)


def test_precision_4_tracks_plaintext_every_iteration():
    """Base 10, precision 4: within 0.002 of float64 plaintext at every iteration.

    Near the minimum (iterations 15-19) the task itself is chaotic: plaintext float64 training with
    N(0, 1e-4) noise added to the weights after each step -- the size of one unit at precision 4 --
    deviates by up to 0.008 there in about 1 run in 10 (see test_plaintext_is_sensitive_late), when
    a hidden ReLU flips on one sample. So every run must track plaintext through iteration 14, and
    all but at most one of the runs through the end.
    """
    enc = _sweep(2)[:, PRECISIONS.index(4)]
    dev = np.abs(enc - tutorial.plaintext_losses()[None])
    assert dev[:, :15].max() < 0.002, dev[:, :15].max(axis=1)
    assert (dev.max(axis=1) < 0.002).sum() >= SEEDS - 1, dev.max(axis=1)


def test_plaintext_is_sensitive_late():
    """The evidence for the allowance above: perturbing plaintext by one precision-4 unit per step."""
    net = tutorial.model()
    grad = jax.jit(jax.value_and_grad(lambda p: losses.sse_plain(net.plain(p, tutorial.DATA), tutorial.TARGET)))
    base = tutorial.plaintext_losses()
    worst = []
    for s in range(20):
        p = jax.tree_util.tree_map(jnp.asarray, tutorial.INIT)
        rng = np.random.default_rng(s)
        out = []
        for _ in range(tutorial.ITERATIONS):
            value, g = grad(p)
            out.append(float(value))
            p = jax.tree_util.tree_map(lambda w, d: w - 0.1 * d + 1e-4 * rng.standard_normal(w.shape), p, g)
        dev = np.abs(np.array(out) - base)
        assert dev[:15].max() < 0.002
        worst.append(dev.max())
    assert max(worst) > 0.002  # some noisy plaintext runs leave the 0.002 band late


def test_deviation_shrinks_with_precision():
    dev = np.abs(_sweep(2) - tutorial.plaintext_losses()[None, None]).mean(axis=(0, 2))
    assert dev[0] > dev[1] > dev[2], dev


def test_three_parties_train():
    """3 parties with dealer truncation track plaintext like 2 parties do.

    Near the minimum the task itself is sensitive: plaintext float64 training with N(0, 1e-4)
    noise added to the weights after each step deviates by up to 0.008 at iterations 18-19 in 2 of
    20 runs (a hidden ReLU flips on one sample), so single late-iteration outliers of that size are
    the task's, not the protocol's. The bound is on the typical run and on every run's early phase.
    """
    enc = _sweep(3)
    dev = np.abs(enc[:, PRECISIONS.index(4)] - tutorial.plaintext_losses())
    assert np.median(dev.max(axis=1)) < 0.002, dev.max(axis=1)
    assert dev[:, :15].max() < 0.002, dev[:, :15].max(axis=1)
    assert dev.max() < 0.02
    assert (enc[:, :, -1] < 0.1 * enc[:, :, 0]).all()  # every run learns


def test_demo_script_writes_json_and_plot(tmp_path):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "experiments"))
    import seed_demo

    out, png = tmp_path / "seed.json", tmp_path / "seed.png"
    seed_demo.main(["--seeds", "2", "--precisions", "3", "4", "--json", str(out), "--plot", str(png)])
    data = json.loads(out.read_text())
    assert len(data["plaintext"]) == 20
    assert set(data["encrypted"]) == {"3", "4"}
    assert np.asarray(data["encrypted"]["4"]).shape == (2, 20)
    assert png.stat().st_size > 10_000
    # 2 parties: 2 matmuls + relu forward, square-sum loss, 3 matmuls + relu product backward,
    # one batched optimizer truncation, one loss reveal: every one of them takes rounds
    assert data["cost_per_step"]["rounds"] >= 15 and data["cost_per_step"]["bytes_per_party"] > 0
