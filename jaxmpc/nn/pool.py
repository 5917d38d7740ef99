r"""Pooling layers on shared values: :func:`MaxPool2d`, :func:`AvgPool2d` (NCHW).

Pooling windows are :func:`jaxmpc.core.im2col.patches`. Average pooling is a local window sum and
one public division (a truncation). Max pooling is a tournament of secure comparisons over the
window (:func:`jaxmpc.ops.compare.tournament`) that keeps the one-hot arg-max as shared 0/1
integers, so its backward is one product of those bits with :math:`dy` (exact, no truncation, no
second comparison).
"""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from ..core import ring
from ..core.im2col import check_window, fold_patches, pair, patches
from ..ops.compare import tournament
from ..protocols import interface
from ..protocols.arith import check_truncation, div_public, mul
from ..protocols.interface import check_mode
from .conv import check_input
from .layers import InputShape, Layer


def maxpool_rounds(window: int, n_parties: int, protocol: str = "additive") -> int:
    r"""Rounds of :func:`MaxPool2d`'s forward for a window of ``window`` entries:
    :math:`\lceil \log_2 T \rceil` levels of (comparison + 1 product round), the comparison's
    rounds being the family's ``msb`` kernel's at ``n_parties``."""
    levels = math.ceil(math.log2(window)) if window > 1 else 0
    return levels * (interface.family(protocol).kernels["msb"].rounds(n_parties) + 1)


def MaxPool2d(kernel_size, stride=None, *, mode: str = "protocol") -> Layer:
    r"""Max pooling over :math:`k_h \times k_w` windows (stride defaults to the kernel size).

    Forward (:math:`T = k_h k_w`, :math:`L = \lceil \log_2 T \rceil` levels): a knockout
    tournament over each window: pair the candidates, compare (:func:`jaxmpc.msb` of
    :math:`a - b`, i.e. :math:`[b > a]`), and select the winners' values *and* one-hot arg-max rows
    obliviously in one Beaver product with the 0/1 comparison bit (no truncation; on the first level
    the rows are public and the select is local). The one-hot arg-max (shared 0/1 integers,
    ``(B, C, H_o, W_o, T)``) is the residual. Ties go to the first maximum in row-major window
    order (``jnp.argmax``'s and PyTorch's convention), so exactly one position gets the gradient.

    Backward: :math:`dx = \mathrm{fold}(\mathrm{onehot} \cdot dy)`: one Beaver product of the
    bits with :math:`dy` (exact, no truncation), then :func:`fold_patches` (local).

    Cost: forward ``maxpool_rounds(T, n)`` = :math:`L\,(L(n) + 9)` rounds (18 for a 2x2 window and 2
    parties); backward 1 round, :math:`8(n-1)(T + 1) |y|` bytes per party.

    ``mode="ideal"`` uses the ideal functionality for the comparisons and products.
    """
    kernel = pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else pair(stride, "stride", 1)
    check_mode(mode)

    def forward(key, params, x):
        check_input(x, "MaxPool2d")
        check_window("MaxPool2d", x.shape, kernel, (0, 0))
        cols = jnp.moveaxis(patches(x.shares, kernel, stride), -3, -1)  # [n, B, C, Ho, Wo, T]
        y, onehot = tournament(key, x.like(cols), np.eye(cols.shape[-1], dtype=np.int64), mode=mode)
        return y, (onehot, InputShape(x.shape))

    def backward(key, params, residual, dy, need_dx: bool = True):
        if not need_dx:
            return {}, None
        onehot, in_shape = residual
        dcols = mul(key, onehot, dy.reshape(dy.shape + (1,)), mode=mode)  # [B, C, Ho, Wo, T]
        return {}, dcols.like(fold_patches(jnp.moveaxis(dcols.shares, -1, -3), in_shape.shape[2:],
                                          kernel, stride), dy.fxp)

    def plain(params, x):
        cols = jnp.moveaxis(patches(x, kernel, stride), -3, -1)
        idx = jnp.argmax(cols, axis=-1)  # the first maximum gets the gradient
        return jnp.take_along_axis(cols, idx[..., None], axis=-1)[..., 0]

    return Layer(lambda key: {}, forward, backward, plain)


def AvgPool2d(kernel_size, stride=None, *, truncation: str = "dealer") -> Layer:
    r"""Average pooling over :math:`k_h \times k_w` windows (stride defaults to the kernel size).

    Forward: the window sum (local) divided by :math:`T = k_h k_w` with one truncation
    (:func:`jaxmpc.div_public`, within 1 unit of the exact mean of the shared values).
    Backward: :math:`dx = \mathrm{fold}(dy / T)` broadcast over each window: one public division
    of :math:`dy` (a truncation) and a local :func:`fold_patches`.

    Cost: forward and backward one dealer truncation each (1 round, :math:`8(n-1)|y|` bytes per
    party); nothing with ``truncation="local"``.
    """
    kernel = pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else pair(stride, "stride", 1)
    window = kernel[0] * kernel[1]

    def forward(key, params, x):
        check_input(x, "AvgPool2d")
        check_window("AvgPool2d", x.shape, kernel, (0, 0))
        check_truncation(truncation, x)
        total = x.like(jnp.sum(patches(x.shares, kernel, stride), axis=-3, dtype=ring.DTYPE))
        return div_public(key, total, window, truncation=truncation), InputShape(x.shape)

    def backward(key, params, in_shape, dy, need_dx: bool = True):
        if not need_dx:
            return {}, None
        d = div_public(key, dy, window, truncation=truncation).shares
        cols = jnp.broadcast_to(d[..., None, :, :], d.shape[:-2] + (window,) + d.shape[-2:])
        return {}, dy.like(fold_patches(cols, in_shape.shape[2:], kernel, stride))

    def plain(params, x):
        return jnp.mean(patches(x, kernel, stride), axis=-3)

    return Layer(lambda key: {}, forward, backward, plain)
