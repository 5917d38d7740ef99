r"""The convolution layer on shared values: :func:`Conv2d` (NCHW, OIHW, like PyTorch).

The convolution :math:`y = x \star w` is bilinear in :math:`(x, w)`, so the family's generic
product computes it (:func:`jaxmpc.protocols.arith.conv2d`, on the ring map
:func:`jaxmpc.core.im2col.conv2d_ring`): no new protocol. Its two adjoints, which the backward
needs, are bilinear too:

.. math::  \frac{\partial L}{\partial w} = \sum_{b, p, q} dy_{b,o,p,q}\, \tilde x_{b,c,s_h p + i, s_w q + j},
           \qquad \frac{\partial L}{\partial x} = \mathrm{fold}\big(w^\top dy\big),

each one product (and one truncation) of its own (:func:`jaxmpc.protocols.arith.conv2d_weight_grad`,
:func:`jaxmpc.protocols.arith.conv2d_input_grad`). Pooling is in :mod:`jaxmpc.nn.pool`,
:func:`~jaxmpc.nn.layers.Flatten` in :mod:`jaxmpc.nn.layers`.

Example:
    >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
    >>> from jaxmpc import nn
    >>> model = nn.serial(nn.Conv2d(1, 2, 3, padding=1), nn.AvgPool2d(2), nn.ReLU(),
    ...                   nn.Flatten(), nn.Linear(8, 3))
    >>> k_init, k_share, k_x, k_fwd = jax.random.split(jax.random.key(0), 4)
    >>> fxp = jaxmpc.FixedPoint(2, 16)
    >>> params = jaxmpc.share(k_share, model.init(k_init), fxp)
    >>> x = jaxmpc.share(k_x, jax.numpy.ones((1, 1, 4, 4)), fxp)
    >>> y, res = jax.eval_shape(model.forward, k_fwd, params, x)  # shapes only (jit to run it)
    >>> y.shape
    (1, 3)
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..core.im2col import check_groups, conv2d_plain, pair
from ..errors import InputTypeError, ShareMismatchError
from ..protocols.arith import conv2d, conv2d_input_grad, conv2d_weight_grad
from ..protocols.interface import check_mode
from ..protocols.shared import Shared
from .layers import Layer


def check_input(x, fname: str, channels: int | None = None) -> None:
    if not isinstance(x, Shared):
        raise InputTypeError(f"{fname}: x must be a jaxmpc.Shared, got {type(x).__name__}.")
    if x.ndim != 4:
        raise ShareMismatchError(
            f"{fname}: input must have rank 4 (batch, channels, height, width) in NCHW layout, got "
            f"shape {x.shape}. Reshape it first, e.g. x.reshape(B, 1, H, W) for one channel.")
    if channels is not None and x.shape[1] != channels:
        raise ShareMismatchError(
            f"{fname}: the layer expects {channels} input channels but the input has {x.shape[1]} "
            f"(shape {x.shape}, NCHW).")


def Conv2d(in_channels: int, out_channels: int, kernel_size, *, stride=1, padding=0, dilation=1,
           groups: int = 1, truncation: str = "default", mode: str = "protocol") -> Layer:
    r"""2-d convolution layer in PyTorch layout: :math:`y = x \star W + b` (NCHW, OIHW).

    Params: ``{"weight": (out, in / groups, kh, kw), "bias": (out,)}``; init
    :math:`U(-1/\sqrt{f}, 1/\sqrt{f})` with fan-in :math:`f = (\text{in}/G)\, k_h k_w`, like PyTorch.
    ``dilation`` and ``groups`` as in ``torch.nn.Conv2d``.

    Forward: one convolution (:func:`jaxmpc.protocols.arith.conv2d`) and a local bias add. Residual: :math:`x`.
    Backward: :math:`dW` by :func:`~jaxmpc.protocols.arith.conv2d_weight_grad`, :math:`db = \sum_{b,p,q} dy` (local),
    :math:`dx` by :func:`~jaxmpc.protocols.arith.conv2d_input_grad` (skipped when ``need_dx`` is False).

    Cost per step: forward 1 Beaver convolution; backward 2 (1 without ``dx``); each 1 round plus a
    dealer truncation (1 round).
    """
    kernel = pair(kernel_size, "kernel_size", 1)
    stride, padding, dilation = pair(stride, "stride", 1), pair(padding, "padding", 0), pair(dilation, "dilation", 1)
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise InputTypeError(f"Conv2d: {name} must be a positive int, got {v!r}.")
    groups = check_groups(groups)
    if in_channels % groups or out_channels % groups:
        raise InputTypeError(f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must be multiples of groups ({groups}).")
    check_mode(mode)
    opts = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
            "truncation": truncation, "mode": mode}

    def init(key):
        k_w, k_b = jax.random.split(key)
        bound = 1.0 / math.sqrt(in_channels // groups * kernel[0] * kernel[1])
        shape = (out_channels, in_channels // groups) + kernel
        return {"weight": jax.random.uniform(k_w, shape, jnp.float64, -bound, bound),
                "bias": jax.random.uniform(k_b, (out_channels,), jnp.float64, -bound, bound)}

    def forward(key, params, x):
        check_input(x, "Conv2d", in_channels)
        y = conv2d(key, x, params["weight"], **opts)
        return y + params["bias"].reshape(-1, 1, 1), x

    def backward(key, params, x, dy, need_dx: bool = True):
        k_w, k_x = jax.random.split(key)
        grads = {"weight": conv2d_weight_grad(k_w, dy, x, kernel_size=kernel, **opts),
                 "bias": dy.sum((0, 2, 3))}
        dx = (conv2d_input_grad(k_x, dy, params["weight"], input_size=x.shape[2:], **opts)
              if need_dx else None)
        return grads, dx

    def plain(params, x):
        if x.ndim != 4 or x.shape[1] != in_channels:
            raise ShareMismatchError(f"Conv2d: expected input (B, {in_channels}, H, W), got {x.shape}.")
        y = conv2d_plain(x, params["weight"], stride=stride, padding=padding, dilation=dilation, groups=groups)
        return y + params["bias"][None, :, None, None]

    return Layer(init, forward, backward, plain)


def Conv1d(in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1, padding: int = 0,
           dilation: int = 1, groups: int = 1, truncation: str = "default", mode: str = "protocol") -> Layer:
    r"""1-d convolution layer in PyTorch layout (input ``(B, C, L)``, weight ``(out, in / groups, k)``):
    :func:`Conv2d` on the input viewed as ``(B, C, 1, L)`` with a ``(1, k)`` kernel (local reshapes;
    same protocol, cost and bounds).
    """
    for name, v in (("kernel_size", kernel_size), ("stride", stride), ("padding", padding),
                    ("dilation", dilation)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise InputTypeError(f"Conv1d: {name} must be an int, got {v!r}.")
    inner = Conv2d(in_channels, out_channels, (1, kernel_size), stride=(1, stride), padding=(0, padding),
                   dilation=(1, dilation), groups=groups, truncation=truncation, mode=mode)

    def check(x, fname):
        if not isinstance(x, Shared) or x.ndim != 3:
            got = x.shape if isinstance(x, Shared) else type(x).__name__
            raise ShareMismatchError(f"{fname}: input must be a jaxmpc.Shared (batch, channels, length), "
                                     f"got {got}.")

    def to2d(params):
        return {**params, "weight": params["weight"].reshape(params["weight"].shape[:2] + (1, kernel_size))}

    def init(key):
        p = inner.init(key)
        return {**p, "weight": p["weight"][:, :, 0, :]}

    def forward(key, params, x):
        check(x, "Conv1d")
        y, res = inner.forward(key, to2d(params), x.reshape(x.shape[:2] + (1, x.shape[2])))
        return y.reshape(y.shape[:2] + (y.shape[3],)), res

    def backward(key, params, x4, dy, need_dx: bool = True):
        grads, dx = inner.backward(key, to2d(params), x4, dy.reshape(dy.shape[:2] + (1, dy.shape[2])), need_dx)
        grads = {**grads, "weight": grads["weight"].reshape(grads["weight"].shape[:2] + (kernel_size,))}
        return grads, (None if dx is None else dx.reshape(dx.shape[:2] + (dx.shape[3],)))

    def plain(params, x):
        y = inner.plain(to2d(params), x[:, :, None, :])
        return y[:, :, 0, :]

    return Layer(init, forward, backward, plain)
