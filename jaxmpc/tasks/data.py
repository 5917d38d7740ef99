r"""Small real data sets for experiments: loading, scaling, a fixed split, one-hot targets, batch order.

Pure functions on NumPy / JAX arrays; nothing is downloaded (the data sets ship with scikit-learn,
which is only imported by :func:`load`). Everything here is public and plaintext: share the arrays
it returns with :func:`jaxmpc.share`.

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

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputTypeError
from ..core.keys import check_key

DATASETS = ("digits", "breast_cancer")


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
    try:
        from sklearn import datasets
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("jaxmpc.tasks.data needs scikit-learn: pip install scikit-learn "
                          "(or pip install -e '.[experiments]').") from e
    bunch = datasets.load_digits() if name == "digits" else datasets.load_breast_cancer()
    return np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.int64)


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


def load(name: str, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Load ``name`` (``"digits"`` or ``"breast_cancer"``), split it (fixed) and scale it to [0, 1]."""
    x, y = load_raw(name)
    x_train, y_train, x_test, y_test = split(x, y, test_fraction, seed)
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
