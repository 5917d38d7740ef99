"""Neural networks on shared values: layers with hand-derived gradients, convolution and pooling,
losses, optimizers, the training loop, private inference and model builders.

The layers are re-exported here (``jaxmpc.nn.Linear``, ``jaxmpc.nn.Conv2d``, ``jaxmpc.nn.Sigmoid``, ...); losses, optimizers,
training, inference and models are the submodules :mod:`~jaxmpc.nn.losses`, :mod:`~jaxmpc.nn.optim`,
:mod:`~jaxmpc.nn.training`, :mod:`~jaxmpc.nn.inference` and :mod:`~jaxmpc.nn.models`.
"""
from . import activations, conv, inference, layers, losses, models, optim, pool, training
from .activations import Abs, Exp, Log, LogSoftmax, Reciprocal, Sigmoid, Softmax, Sqrt, Tanh
from .conv import Conv1d, Conv2d
from .layers import Flatten, Layer, Linear, ReLU, serial
from .pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = ["Abs", "AdaptiveAvgPool2d", "AvgPool2d", "Conv1d", "Conv2d", "Exp", "Flatten", "Layer", "Linear",
           "Log", "LogSoftmax", "MaxPool2d", "ReLU", "Reciprocal", "Sigmoid", "Softmax", "Sqrt", "Tanh",
           "serial", "activations", "conv", "inference", "layers", "losses", "models", "optim", "pool",
           "training"]
