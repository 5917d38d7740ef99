"""Neural networks on shared values: layers with hand-derived gradients, convolution and pooling,
losses, optimizers, the training loop and private inference.

The layers are re-exported here (``jaxmpc.nn.Linear``, ``jaxmpc.nn.Conv2d``, ...); losses, optimizers,
training and inference are the submodules :mod:`~jaxmpc.nn.losses`, :mod:`~jaxmpc.nn.optim`,
:mod:`~jaxmpc.nn.training` and :mod:`~jaxmpc.nn.inference`.
"""
from . import conv, inference, layers, losses, optim, pool, training
from .conv import Conv1d, Conv2d
from .layers import Flatten, Layer, Linear, ReLU, serial
from .pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "Conv1d", "Conv2d", "Flatten", "Layer", "Linear", "MaxPool2d", "ReLU", "serial",
           "conv", "inference", "layers", "losses", "optim", "pool", "training"]
