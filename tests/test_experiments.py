"""Small, fast versions of experiments/train.py and experiments/sweep.py, run in-process, plus the
library pieces they rest on (jaxmpc.tasks.data and jaxmpc.tasks.classify, jaxmpc.nn.models, the
secure argmax of jaxmpc.nn.inference).

The scripts are imported by name: tests/conftest.py puts experiments/ on sys.path. The accuracy
target of the issue (digits, 10 epochs) is checked by running the script, not here.
"""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc.nn import inference, models
from jaxmpc.tasks import classify, data


# ---- jaxmpc.tasks.data ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, n_features, n_classes", [("digits", 64, 10), ("breast_cancer", 30, 2)])
def test_load_scales_and_splits(name, n_features, n_classes):
    ds = data.load(name)
    assert ds.n_features == n_features and ds.n_classes == n_classes
    for x in (ds.x_train, ds.x_test):
        assert x.dtype == np.float64 and x.min() >= 0.0 and x.max() <= 1.0
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    n = ds.n_train + ds.n_test
    assert abs(ds.n_test / n - 0.2) < 0.01
    # stratified: every class in both parts, in about the same proportion
    for y in (ds.y_train, ds.y_test):
        frac = np.bincount(y, minlength=n_classes) / len(y)
        np.testing.assert_allclose(frac, np.bincount(np.concatenate([ds.y_train, ds.y_test])) / n, atol=0.02)
    again = data.load(name)  # the split is fixed
    np.testing.assert_array_equal(again.x_test, ds.x_test)


def test_batch_order_is_a_permutation_without_the_partial_batch():
    order = np.asarray(data.batch_order(jaxmpc.key(3), 10, 3))
    assert order.shape == (3, 3) and order.dtype == np.int32
    assert len(set(order.ravel().tolist())) == 9 and order.max() < 10
    with pytest.raises(jaxmpc.InputTypeError, match="batch_size"):
        data.batch_order(jaxmpc.key(4), 10, 11)


def test_one_hot():
    np.testing.assert_array_equal(data.one_hot([2, 0], 3), [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


# ---- jaxmpc.nn.inference -----------------------------------------------------------------------------
def test_secure_argmax_matches_argmax():
    # 5 classes exercise every path: pairs with public and with shared indices, odd ones out of both
    # kinds; 3 parties and base 10 (2 parties and base 2 run in the training-script test)
    fxp = jaxmpc.FixedPoint(10, 4)
    v = np.random.default_rng(0).normal(size=(8, 5)).round(3)
    v[0] = 0.5  # a tie goes to the lowest index, as in jnp.argmax
    v[1, -1] = 40.0  # the odd one out wins
    v[2, 1] = v[2, 3] = 9.0  # a tie between two winners of the first level
    k_x, k_arg, k_one, k_arg1 = jax.random.split(jaxmpc.key(5), 4)
    x = jaxmpc.share(k_x, v, fxp, n_parties=3)
    got = np.asarray(jaxmpc.reveal(jax.jit(inference.argmax)(k_arg, x)))
    np.testing.assert_array_equal(got, v.argmax(-1))
    one = jaxmpc.share(k_one, v[:, :1], fxp, n_parties=3)  # a single class: index 0, no protocol
    np.testing.assert_array_equal(jaxmpc.reveal(inference.argmax(k_arg1, one)), np.zeros(8))


def test_secure_argmax_cost_formula():
    fxp = jaxmpc.FixedPoint(2, 16)
    x = jaxmpc.Shared(jax.ShapeDtypeStruct((2, 4, 10), jnp.uint64), fxp)
    report = jaxmpc.cost(inference.argmax, jaxmpc.key(0), x)
    assert inference.argmax_rounds(10) == 4
    assert report.rounds == 4 * (jaxmpc.protocols.additive.binary.msb_rounds(2) + 1)
    assert "reveal" not in report.ops  # nothing is opened but masked values


# ---- experiments/train.py -------------------------------------------------------------------------
def test_train_script_small(tmp_path):
    import train
    out_json, out_png = tmp_path / "train.json", tmp_path / "train.png"
    out = train.main(["--dataset", "breast_cancer", "--hidden", "8", "--epochs", "1", "--batch-size", "32",
                      "--lr", "0.3", "--protocol", "additive", "--ring", "64",
                      "--quiet", "--json", str(out_json), "--plot", str(out_png)])
    with open(out_json) as f:
        res = json.load(f)
    assert res["encrypted_test_accuracy"] == out["encrypted_test_accuracy"]
    assert (res["protocol"], res["ring"]) == ("additive", 64) == (res["config"]["protocol"], res["config"]["ring"])
    assert 0 < res["first_epoch_seconds_incl_compile"] < res["wall_seconds"]
    assert out_png.stat().st_size > 0
    steps = res["steps_per_epoch"]
    assert steps == res["dataset"]["n_train"] // 32
    for name in ("encrypted_train_loss", "plaintext_train_loss", "encrypted_test_accuracy",
                 "plaintext_test_accuracy", "max_param_deviation"):
        assert len(res["epochs"][name]) == 1, name
    enc, plain = np.array(res["step_losses"]["encrypted"]), np.array(res["step_losses"]["plaintext"])
    assert enc.shape == plain.shape == (steps,)
    # same initial weights and batch order: the twin is step-comparable (16 fractional bits)
    np.testing.assert_allclose(enc, plain, atol=2e-3)
    assert 0 < res["final_max_param_deviation"] < 1e-2
    for key in ("encrypted_test_accuracy", "plaintext_test_accuracy"):
        assert 0.0 <= res[key] <= 1.0
    assert abs(res["encrypted_test_accuracy"] - res["plaintext_test_accuracy"]) <= 0.05
    # the labels revealed by secure inference are the revealed model's argmax
    assert res["secure_inference_agreement"] >= 0.97
    c = res["cost_per_step"]
    assert c["rounds"] > 0 and c["bytes_per_party"] > 0 and 0 < c["lan_seconds"] < c["wan_seconds"]
    assert res["cost_inference"]["rounds"] > 0


def test_classify_logistic_regression_with_cross_entropy():
    """The library's run (what train.py --hidden --loss ce calls): multinomial logistic regression,
    step-comparable to the twin."""
    ds = data.load("breast_cancer")
    cfg = classify.config_for(ds, hidden=(), loss="ce")
    epochs = []
    res = classify.train(ds, cfg, precision=16, learning_rate=0.5, epochs=1, batch_size=64,
                         on_epoch=lambda e, hist: epochs.append((e, len(hist["encrypted_train_loss"]))))
    assert epochs == [(0, 1)] and res["steps_per_epoch"] == ds.n_train // 64
    assert isinstance(res["step_cost"], jaxmpc.CostReport) and res["step_cost"].rounds > 0
    assert res["encrypted_test_accuracy"] > 0.85
    assert abs(res["encrypted_test_accuracy"] - res["plaintext_test_accuracy"]) <= 0.03
    enc, plain = np.array(res["step_losses"]["encrypted"]), np.array(res["step_losses"]["plaintext"])
    np.testing.assert_allclose(enc, plain, atol=1e-2)  # approx. exp/reciprocal/log: ~3e-3 each


def test_train_script_cnn(tmp_path):
    """--model cnn: a tiny CNN (2 and 2 channels) on the digit images, 2 steps of 480, step-comparable to
    the twin, with the MLP's JSON fields. Ideal mode keeps the compilation short (the layers' protocols
    are tested in test_conv.py)."""
    import train
    out_json = tmp_path / "cnn.json"
    out = train.main(["--model", "cnn", "--channels", "2", "2", "--epochs", "1", "--batch-size", "480",
                      "--mode", "ideal", "--quiet", "--json", str(out_json)])
    with open(out_json) as f:
        res = json.load(f)
    assert res["encrypted_test_accuracy"] == out["encrypted_test_accuracy"]
    assert {"encrypted_test_accuracy", "plaintext_test_accuracy", "final_max_param_deviation",
            "secure_inference_agreement", "epochs", "step_losses", "cost_per_step", "cost_inference",
            "steps_per_epoch", "seconds_per_step"} <= set(res)
    assert res["config"]["model"] == "cnn" and res["config"]["channels"] == [2, 2]
    assert res["steps_per_epoch"] == 2
    enc, plain = np.array(res["step_losses"]["encrypted"]), np.array(res["step_losses"]["plaintext"])
    np.testing.assert_allclose(enc, plain, atol=2e-3)
    assert res["secure_inference_agreement"] >= 0.97
    ops = res["cost_per_step"]["report"]["ops"]
    # two convolutions forward and their weight gradients; the input gradient of the second only
    assert [ops[k]["calls"] for k in ("conv2d", "conv2d/weight_grad", "conv2d/input_grad")] == [2, 2, 1]
    s = res["seconds_per_step"]
    assert s["encrypted"] > 0 and s["plaintext"] > 0 and s["includes_compile"]
    with pytest.raises(SystemExit, match="image data set"):
        train.main(["--model", "cnn", "--dataset", "breast_cancer"])


def test_train_script_rejects_bad_options():
    import train
    with pytest.raises(SystemExit, match="precision"):
        train.main(["--base", "10", "--precision", "12"])
    with pytest.raises(SystemExit, match="2 parties"):
        train.main(["--parties", "3", "--truncation", "local"])
    with pytest.raises(SystemExit, match=r"ring=128.*Pass ring=64"):  # Z_2^64 and Z_2^32 only
        train.main(["--ring", "128"])
    with pytest.raises(SystemExit, match=r"Z_2\^32: .* base 2 allows precision 0\.\.14"):
        train.main(["--ring", "32", "--base", "2", "--precision", "16"])
    with pytest.raises(SystemExit):  # argparse: not a registered protocol family
        train.main(["--protocol", "no_such_family"])


def test_classify_config_and_models():
    """classify.config_for / make_model build the script's networks from jaxmpc.nn.models."""
    digits, cancer = data.load("digits"), data.load("breast_cancer")
    cfg = classify.config_for(digits, model="cnn", channels=[4, 6], hidden=[16])
    assert cfg.image_shape == (1, 8, 8) and cfg.channels == (4, 6) and cfg.hidden == (16,)
    assert classify.describe(cfg) == "CNN 1x8x8-conv4-maxpool-conv6-avgpool-16-10"
    shapes = [p["weight"].shape for p in classify.make_model(cfg).init(jaxmpc.key(0)) if p]
    assert shapes == [(4, 1, 3, 3), (6, 4, 3, 3), (16, 24), (10, 16)]
    mlp = classify.config_for(cancer, hidden=[8])
    assert classify.describe(mlp) == "MLP 30-8-2"
    assert [p["weight"].shape for p in classify.make_model(mlp).init(jaxmpc.key(0)) if p] == [(8, 30), (2, 8)]
    assert classify.model_inputs(cfg, np.zeros((5, 64))).shape == (5, 1, 8, 8)
    assert (classify.default_lr("digits"), classify.default_lr("digits", model="cnn"),
            classify.default_lr("breast_cancer", loss="ce")) == (0.5, 0.5, 0.05)
    with pytest.raises(jaxmpc.InputTypeError, match="image data set"):
        classify.config_for(cancer, model="cnn")
    with pytest.raises(jaxmpc.InputTypeError, match="loss must be one of"):
        classify.config_for(cancer, loss="hinge")
    with pytest.raises(jaxmpc.InputTypeError, match="batch_size must be in 1..456"):
        classify.train(cancer, mlp, precision=16, learning_rate=0.1, epochs=1, batch_size=1000)
    with pytest.raises(jaxmpc.InputTypeError, match="mlp.sizes. must be 2 or more positive ints"):
        models.mlp((3,))
    with pytest.raises(jaxmpc.InputTypeError, match=r"\(C, H, W\)"):
        models.cnn((8, 8), (2, 2), (), 10)


# ---- experiments/sweep.py -------------------------------------------------------------------------
def test_sweep_script_small(tmp_path):
    import sweep
    out_json, out_png = tmp_path / "sweep.json", tmp_path / "sweep.png"
    sweep.main(["--task", "seed", "--precisions", "2", "4", "--seeds", "2", "--iterations", "6",
                "--chunk-size", "3", "--baseline-points", "2", "--quiet",
                "--json", str(out_json), "--plot", str(out_png)])
    with open(out_json) as f:
        res = json.load(f)
    assert out_png.stat().st_size > 0
    assert res["n_runs"] == 4 and res["vmapped"]["calls"] == 2  # 4 runs in chunks of 3, padded
    assert (res["protocol"], res["ring"]) == ("additive", 64)
    assert res["devices"] == len(jax.devices()) and res["processes"] == 1  # every visible device
    assert sorted(zip(res["grid"]["seed"], res["grid"]["precision"])) == [(0, 2), (0, 4), (1, 2), (1, 4)]
    for name in ("final_loss", "deviation"):
        assert len(res["runs"][name]) == 4 and np.all(np.isfinite(res["runs"][name]))
    rows = {r["precision"]: r for r in res["summary"]}
    assert set(rows) == {2, 4} and all(r["runs"] == 2 for r in rows.values())
    for r in rows.values():
        d = r["deviation"]
        assert d["worst"] >= d["mean"] and d["std"] >= 0
    assert rows[4]["deviation"]["worst"] < 0.01 < rows[2]["deviation"]["mean"]
    base = res["pointwise"]
    assert base["points_timed"] == 2 and base["extrapolated"]
    assert res["speedup"] == base["speedup_run"] and np.isfinite(res["speedup"]) and res["speedup"] > 0


# ---- experiments/bench_gemm.py ---------------------------------------------------------------------
def test_bench_gemm_script_checks_every_method(tmp_path):
    """Two tiny shapes, one checked against NumPy and one (over --numpy-max-macs) against "xla": every
    method this backend offers is timed and exact, and the automatic choice is marked."""
    import bench_gemm
    out = tmp_path / "gemm.json"
    bench_gemm.main(["--shapes", "5,7,3", "16,70,9", "--repeats", "1", "--numpy-max-macs", "200",
                     "--json", str(out)])
    with open(out) as f:
        res = json.load(f)
    recs = res["records"]
    assert [r["method"] for r in recs] == list(jaxmpc.core.gemm.methods()) * 2
    assert all(r["exact"] and r["seconds"] > 0 and r["float32_seconds"] > 0 for r in recs)
    assert sum(r["chosen"] for r in recs) == 2  # one per shape
    with pytest.raises(SystemExit):
        bench_gemm.main(["--shapes", "5,7"])


# ---- experiments/bench.py ------------------------------------------------------------------------
def test_bench_script_records_the_protocol(tmp_path):
    """One case, one repeat (a smoke run, not a measurement): every record names its protocol and
    ring; a ring the family lacks is refused before any work."""
    import bench
    out = tmp_path / "bench.json"
    recs = bench.main(["--only", "seed_20", "--repeats", "1", "--protocol", "additive", "--ring", "64",
                       "--json", str(out)])
    res = json.loads(out.read_text())
    assert res["benchmarks"] == recs and len(recs) == 1
    assert all((r["protocol"], r["ring"]) == ("additive", 64) for r in recs)
    with pytest.raises(SystemExit, match="ring=128"):
        bench.main(["--ring", "128"])
