r"""Model builders: the networks the experiments train, as :class:`~jaxmpc.nn.Layer` values.

:func:`mlp` is a multilayer perceptron, :func:`cnn` a small convolutional network for images;
:data:`NETWORKS` holds the field's MNIST benchmark networks (SecureML's Network A, Network B,
MiniONN's Network C, LeNet), with the layer shapes of falcon-public and Piranha. All
return ``nn.serial(...)`` of the layers in :mod:`jaxmpc.nn.layers`, :mod:`~jaxmpc.nn.conv` and
:mod:`~jaxmpc.nn.pool`, so ``init`` / ``forward`` / ``backward`` / ``plain`` work as for any layer.

Example:
    >>> import jax; jax.config.update("jax_enable_x64", True)
    >>> from jaxmpc.nn import models
    >>> net = models.mlp((64, 128, 10))
    >>> [p["weight"].shape for p in net.init(jax.random.key(0)) if p]
    [(128, 64), (10, 128)]
    >>> cnn = models.cnn((1, 8, 8), (8, 16), (), 10)
    >>> [p["weight"].shape for p in cnn.init(jax.random.key(0)) if p]
    [(8, 1, 3, 3), (16, 8, 3, 3), (10, 64)]
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import InputTypeError
from .conv import Conv2d
from .layers import Flatten, Layer, Linear, ReLU, serial
from .pool import AvgPool2d, MaxPool2d


def _check_sizes(sizes, name: str, minimum: int) -> tuple[int, ...]:
    sizes = tuple(sizes)
    if len(sizes) < minimum or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                       and s >= 1 for s in sizes):
        raise InputTypeError(f"{name} must be {minimum} or more positive ints, got {sizes!r}.")
    return tuple(int(s) for s in sizes)


def _dense(d: int, hidden: Sequence[int], n_out: int, truncation: str, mode: str) -> list[Layer]:
    layers = []
    for h in hidden:
        layers += [Linear(d, h, truncation=truncation, mode=mode), ReLU(mode=mode)]
        d = h
    return layers + [Linear(d, n_out, truncation=truncation, mode=mode)]


def mlp(sizes: Sequence[int], *, truncation: str = "default", mode: str = "protocol") -> Layer:
    r"""``Linear -> ReLU`` for every hidden size, then a ``Linear`` to the outputs.

    Args:
        sizes: ``(in, h_1, ..., h_k, out)``; ``(in, out)`` is a linear model.
        truncation, mode: passed to every layer (:func:`jaxmpc.nn.Linear`, :func:`jaxmpc.nn.ReLU`).
    Returns:
        The network as one :class:`~jaxmpc.nn.Layer` taking ``(batch, in)`` features.
    """
    sizes = _check_sizes(sizes, "mlp(sizes)", 2)
    return serial(*_dense(sizes[0], sizes[1:-1], sizes[-1], truncation, mode))


def cnn(image_shape: Sequence[int], channels: Sequence[int], hidden: Sequence[int], n_classes: int, *,
        truncation: str = "default", mode: str = "protocol") -> Layer:
    r"""``Conv2d(C, c1, 3, pad 1) -> MaxPool2d(2) -> ReLU -> Conv2d(c1, c2, 3, pad 1) -> ReLU ->
    AvgPool2d(2) -> Flatten``, then the dense head of :func:`mlp` (``hidden`` sizes, then
    ``n_classes``) on the :math:`c_2 \lfloor H/4 \rfloor \lfloor W/4 \rfloor` features.

    Max pooling before the ReLU gives the same result as after it (both are monotone) with a
    quarter of the comparisons.

    Args:
        image_shape: ``(C, H, W)`` of one input image.
        channels: ``(c1, c2)``, the output channels of the two convolutions.
        hidden: hidden sizes of the dense head (empty: one ``Linear`` to the classes).
        n_classes: outputs.
        truncation, mode: passed to every layer that takes them.
    Returns:
        The network as one :class:`~jaxmpc.nn.Layer` taking images ``(batch, C, H, W)``.
    """
    if len(tuple(image_shape)) != 3:
        raise InputTypeError(f"cnn(image_shape) must be (C, H, W), got {tuple(image_shape)!r}.")
    if len(tuple(channels)) != 2:
        raise InputTypeError(f"cnn(channels) must be the two convolutions' (c1, c2), got {tuple(channels)!r}.")
    c, h, w = _check_sizes(image_shape, "cnn(image_shape)", 3)
    c1, c2 = _check_sizes(channels, "cnn(channels)", 2)
    trunk = [Conv2d(c, c1, 3, padding=1, truncation=truncation, mode=mode), MaxPool2d(2, mode=mode),
             ReLU(mode=mode),
             Conv2d(c1, c2, 3, padding=1, truncation=truncation, mode=mode), ReLU(mode=mode),
             AvgPool2d(2, truncation=truncation), Flatten()]
    head = _dense(c2 * (h // 4) * (w // 4), _check_sizes(hidden, "cnn(hidden)", 0), n_classes,
                  truncation, mode)
    return serial(*trunk, *head)


# ---- the field's benchmark networks on 28 x 28 MNIST images (falcon-public src/secondary.cpp,
# Piranha files/models/*.json, SecureML, MiniONN) ----------------------------------------------------
def network_a(*, truncation: str = "default", mode: str = "protocol") -> Layer:
    r"""SecureML's network: ``FC 784-128 -> ReLU -> FC 128-128 -> ReLU -> FC 128-10`` (flat inputs)."""
    return mlp((784, 128, 128, 10), truncation=truncation, mode=mode)


def network_b(*, truncation: str = "default", mode: str = "protocol") -> Layer:
    r"""``Conv 1->5 k2 s2 (14x14x5 = 980) -> ReLU -> FC 980-100 -> ReLU -> FC 100-10`` (images
    ``(B, 1, 28, 28)``)."""
    opts = {"truncation": truncation, "mode": mode}
    return serial(Conv2d(1, 5, 2, stride=2, **opts), ReLU(mode=mode), Flatten(),
                  *_dense(980, (100,), 10, truncation, mode))


def _conv_pool_net(c1: int, c2: int, hidden: int, truncation: str, mode: str) -> Layer:
    """``Conv 1->c1 k5 -> MaxPool 2 -> ReLU -> Conv c1->c2 k5 -> MaxPool 2 -> ReLU -> FC 16 c2-hidden
    -> ReLU -> FC hidden-10`` on 28x28 images (24 -> 12 -> 8 -> 4 pixels a side)."""
    opts = {"truncation": truncation, "mode": mode}
    return serial(Conv2d(1, c1, 5, **opts), MaxPool2d(2, mode=mode), ReLU(mode=mode),
                  Conv2d(c1, c2, 5, **opts), MaxPool2d(2, mode=mode), ReLU(mode=mode), Flatten(),
                  *_dense(16 * c2, (hidden,), 10, truncation, mode))


def network_c(*, truncation: str = "default", mode: str = "protocol") -> Layer:
    r"""MiniONN's network: ``Conv 1->16 k5 -> MaxPool 2 -> ReLU -> Conv 16->16 k5 -> MaxPool 2 ->
    ReLU -> FC 256-100 -> ReLU -> FC 100-10``."""
    return _conv_pool_net(16, 16, 100, truncation, mode)


def lenet(*, truncation: str = "default", mode: str = "protocol") -> Layer:
    r"""LeNet (Network D): ``Conv 1->20 k5 -> MaxPool 2 -> ReLU -> Conv 20->50 k5 -> MaxPool 2 ->
    ReLU -> FC 800-500 -> ReLU -> FC 500-10``."""
    return _conv_pool_net(20, 50, 500, truncation, mode)


NETWORKS = {"network-a": network_a, "network-b": network_b, "network-c": network_c, "lenet": lenet}
