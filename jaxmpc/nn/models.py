r"""Model builders: the networks the experiments train, as :class:`~jaxmpc.nn.Layer` values.

:func:`mlp` is a multilayer perceptron, :func:`cnn` a small convolutional network for images. Both
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


def mlp(sizes: Sequence[int], *, truncation: str = "dealer", mode: str = "protocol") -> Layer:
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
        truncation: str = "dealer", mode: str = "protocol") -> Layer:
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
