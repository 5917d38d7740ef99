r"""The seed task: PySyft's "Train an Encrypted Neural Network on Encrypted Data" tutorial.

Two data holders share the data, the targets and a 2-2-1 ReLU network; a dealer supplies correlated
randomness. 20 full-batch SGD steps (lr 0.1) on the sum of squared errors, the loss revealed before
each update. :func:`run` is one encrypted run as a pure function of ``(key, precision)``, ready for
``jax.vmap`` over keys and precisions; :func:`plaintext_losses` is the float64 oracle.

Example:
    >>> import jax, jax.numpy as jnp; jax.config.update("jax_enable_x64", True)
    >>> from jaxmpc.tasks import tutorial
    >>> import jaxmpc
    >>> keys = jax.random.split(jaxmpc.key(0), 2)  # one key per run
    >>> losses = jax.jit(jax.vmap(tutorial.run))(keys, jnp.array([3, 4]))
    >>> losses.shape
    (2, 20)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..nn import losses, layers as nn, optim, training as train
from ..core.fixedpoint import FixedPoint
from ..protocols.shared import share

DATA = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
TARGET = np.array([[0.0], [0.0], [1.0], [1.0]])
INIT = [
    {"weight": np.array([[0.0738, -0.2109], [-0.1579, 0.3174]]), "bias": np.array([0.0, 0.1])},
    {},
    {"weight": np.array([[-0.5368, 0.7050]]), "bias": np.array([-0.0343])},
]
LEARNING_RATE = 0.1
ITERATIONS = 20


def model(truncation: str = "default") -> nn.Layer:
    """Linear(2, 2) -> ReLU -> Linear(2, 1)."""
    return nn.serial(nn.Linear(2, 2, truncation=truncation), nn.ReLU(),
                     nn.Linear(2, 1, truncation=truncation))


def run(key, precision, *, base: int = 10, n_parties: int = 2, iterations: int = ITERATIONS,
        learning_rate=LEARNING_RATE, truncation: str = "default", rounding: str = "nearest",
        protocol: str = "additive", ring: int = 64):
    """One encrypted training run of the seed task; returns the revealed losses ``float64[iterations]``.

    Args:
        key: PRNG key for sharing, the dealer and the optimizer's truncations.
        precision: fixed-point precision (array data: ``vmap`` over it).
        base, n_parties, iterations, truncation, rounding: static configuration.
        protocol, ring: the protocol family and the ring width in bits, as :func:`jaxmpc.share`
            takes them (static).
        learning_rate: public learning rate (array data: ``vmap`` over it).
    """
    fxp = FixedPoint(base, precision, rounding)
    k_data, k_target, k_model, k_opt, k_train = jax.random.split(key, 5)
    x = share(k_data, DATA, fxp, n_parties, protocol=protocol, ring=ring)
    t = share(k_target, TARGET, fxp, n_parties, protocol=protocol, ring=ring)
    params = share(k_model, INIT, fxp, n_parties, protocol=protocol, ring=ring)
    opt = optim.sgd(learning_rate, key=k_opt, truncation=truncation)
    net = model(truncation)
    _, _, loss = train.fit(k_train, net, losses.sse, opt, params, opt.init(params), x, t, iterations)
    return loss


def plaintext_losses(iterations: int = ITERATIONS, learning_rate: float = LEARNING_RATE) -> np.ndarray:
    """The float64 plaintext oracle: the same network trained with ``jax.value_and_grad``."""
    net = model()

    def loss(p):
        return losses.sse_plain(net.plain(p, DATA), TARGET)

    p = jax.tree_util.tree_map(jnp.asarray, INIT)
    out = []
    for _ in range(iterations):
        value, grads = jax.value_and_grad(loss)(p)
        out.append(float(value))
        p = jax.tree_util.tree_map(lambda w, g: w - learning_rate * g, p, grads)
    return np.array(out)
