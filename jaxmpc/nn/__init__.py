"""Neural networks on shared values: layers with hand-derived gradients, convolution and pooling,
losses, optimizers, the training loop, private inference and model builders.

The layers are re-exported here (``jaxmpc.nn.Linear``, ``jaxmpc.nn.Conv2d``, ...); losses, optimizers,
training, inference and models are the submodules :mod:`~jaxmpc.nn.losses`, :mod:`~jaxmpc.nn.optim`,
:mod:`~jaxmpc.nn.training`, :mod:`~jaxmpc.nn.inference` and :mod:`~jaxmpc.nn.models`.
"""
from . import conv, inference, layers, losses, models, optim, pool, training
from .conv import Conv1d, Conv2d
from .layers import Flatten, Layer, Linear, ReLU, serial
from .pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "Conv1d", "Conv2d", "Flatten", "Layer", "Linear", "MaxPool2d",
           "ReLU", "serial", "conv", "inference", "layers", "losses", "models", "optim", "pool", "training"]
