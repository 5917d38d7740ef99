r"""Pooling layers on shared values: :func:`MaxPool2d`, :func:`AvgPool2d`, :func:`AdaptiveAvgPool2d` (NCHW).

Pooling windows are :func:`jaxmpc.core.im2col.patches`. Average pooling is a local window sum and
one public division (a truncation). Max pooling is a tournament of secure comparisons over the
window (:func:`jaxmpc.ops.compare.tournament`) that keeps the one-hot arg-max as shared 0/1
integers, so its backward is one product of those bits with :math:`dy` (exact, no truncation, no
second comparison).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..core import ring
from ..core.im2col import check_window, fold_patches, pair, patches
from ..ops.compare import tournament
from ..protocols import interface
from ..errors import ShareMismatchError
from ..protocols.arith import check_truncation, div_public, mul, truncate
from ..protocols.interface import check_mode
from .conv import check_input
from .layers import InputShape, Layer


def maxpool_rounds(window: int, n_parties: int, protocol: str = "additive", ring_bits: int = 64) -> int:
    r"""Rounds of :func:`MaxPool2d`'s forward for a window of ``window`` entries:
    :math:`\lceil \log_2 T \rceil` levels of (comparison + 1 product round), the comparison's
    rounds being the family's ``msb`` kernel's at ``n_parties`` on :math:`\mathbb{Z}_{2^\ell}`."""
    levels = math.ceil(math.log2(window)) if window > 1 else 0
    return levels * (interface.family(protocol).kernels["msb"].rounds(n_parties, ring_bits) + 1)


PAD_MIN = -(2 ** 62)  # max pooling's padding on Z_2^64: below every value the ring's headroom holds


def pad_min(dtype) -> jax.Array:
    r"""Max pooling's padding in the ring ``dtype``: :math:`-2^{\ell - 2}`, below every value of the
    ring's headroom (:data:`PAD_MIN` on :math:`\mathbb{Z}_{2^{64}}`)."""
    return ring.word(-(1 << (8 * np.dtype(dtype).itemsize - 2)), dtype)


def _check_pool_padding(fname: str, kernel, padding) -> None:
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ShareMismatchError(f"{fname}: padding {padding} must be at most half the kernel {kernel} "
                                 "(as in PyTorch), so that no window is padding only.")


def MaxPool2d(kernel_size, stride=None, padding=0, *, mode: str = "protocol") -> Layer:
    r"""Max pooling over :math:`k_h \times k_w` windows (stride defaults to the kernel size; zero or
    more ``padding`` on each side, at most half the kernel, whose entries never win: party 0's share
    is padded with :data:`PAD_MIN`, below every value in the ring's headroom, PyTorch's
    :math:`-\infty`).

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
    pad = pair(padding, "padding", 0)
    _check_pool_padding("MaxPool2d", kernel, pad)
    check_mode(mode)

    def padded(shares):
        if not any(pad):
            return shares
        widths = [(0, 0)] * (shares.ndim - 2) + [(pad[0], pad[0]), (pad[1], pad[1])]
        low = jnp.pad(shares[:1], widths, constant_values=pad_min(shares.dtype))
        return jnp.concatenate([low, jnp.pad(shares[1:], widths)], axis=0)

    def forward(key, params, x):
        check_input(x, "MaxPool2d")
        check_window("MaxPool2d", x.shape, kernel, pad)
        cols = jnp.moveaxis(patches(padded(x.shares), kernel, stride), -3, -1)  # [n, B, C, Ho, Wo, T]
        y, onehot = tournament(key, x.like(cols), np.eye(cols.shape[-1], dtype=np.int64), mode=mode)
        return y, (onehot, InputShape(x.shape))

    def backward(key, params, residual, dy, need_dx: bool = True):
        if not need_dx:
            return {}, None
        onehot, in_shape = residual
        dcols = mul(key, onehot, dy.reshape(dy.shape + (1,)), mode=mode)  # [B, C, Ho, Wo, T]
        return {}, dcols.like(fold_patches(jnp.moveaxis(dcols.shares, -1, -3), in_shape.shape[2:],
                                          kernel, stride, pad), dy.fxp)

    def plain(params, x):
        if any(pad):  # PyTorch pads max pooling with -inf
            widths = [(0, 0)] * (x.ndim - 2) + [(pad[0], pad[0]), (pad[1], pad[1])]
            x = jnp.pad(x, widths, constant_values=jnp.asarray(-jnp.inf, x.dtype))
        cols = jnp.moveaxis(patches(x, kernel, stride), -3, -1)
        idx = jnp.argmax(cols, axis=-1)  # the first maximum gets the gradient
        return jnp.take_along_axis(cols, idx[..., None], axis=-1)[..., 0]

    return Layer(lambda key: {}, forward, backward, plain)


def AvgPool2d(kernel_size, stride=None, padding=0, *, truncation: str = "default") -> Layer:
    r"""Average pooling over :math:`k_h \times k_w` windows (stride defaults to the kernel size; zero
    ``padding`` counted in the window, PyTorch's default ``count_include_pad=True``).

    Forward: the window sum (local) divided by :math:`T = k_h k_w` with one truncation
    (:func:`jaxmpc.div_public`, within 1 unit of the exact mean of the shared values).
    Backward: :math:`dx = \mathrm{fold}(dy / T)` broadcast over each window: one public division
    of :math:`dy` (a truncation) and a local :func:`fold_patches`.

    Cost: forward and backward one dealer truncation each (1 round, :math:`8(n-1)|y|` bytes per
    party); nothing with ``truncation="local"``.
    """
    kernel = pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else pair(stride, "stride", 1)
    pad = pair(padding, "padding", 0)
    _check_pool_padding("AvgPool2d", kernel, pad)
    window = kernel[0] * kernel[1]

    def forward(key, params, x):
        check_input(x, "AvgPool2d")
        check_window("AvgPool2d", x.shape, kernel, pad)
        check_truncation(truncation, x)
        total = x.like(jnp.sum(patches(x.shares, kernel, stride, pad), axis=-3, dtype=x.shares.dtype))
        return div_public(key, total, window, truncation=truncation), InputShape(x.shape)

    def backward(key, params, in_shape, dy, need_dx: bool = True):
        if not need_dx:
            return {}, None
        d = div_public(key, dy, window, truncation=truncation).shares
        cols = jnp.broadcast_to(d[..., None, :, :], d.shape[:-2] + (window,) + d.shape[-2:])
        return {}, dy.like(fold_patches(cols, in_shape.shape[2:], kernel, stride, pad))

    def plain(params, x):
        return jnp.mean(patches(x, kernel, stride, pad), axis=-3)

    return Layer(lambda key: {}, forward, backward, plain)


def adaptive_windows(size: int, out: int) -> np.ndarray:
    r"""PyTorch's adaptive pooling windows as a 0/1 matrix ``int64[out, size]``: output :math:`i`
    averages inputs :math:`\lfloor i\,H/H_o \rfloor .. \lceil (i+1) H/H_o \rceil - 1`."""
    m = np.zeros((out, size), np.int64)
    for i in range(out):
        m[i, (i * size) // out:-(-((i + 1) * size) // out)] = 1
    return m


def _per_output(counts: np.ndarray, shape, dtype) -> jax.Array:
    return jnp.broadcast_to(jnp.asarray(counts, dtype), tuple(shape))


def AdaptiveAvgPool2d(output_size) -> Layer:
    r"""Adaptive average pooling to ``output_size`` :math:`(H_o, W_o)` (``torch.nn.AdaptiveAvgPool2d``).

    With the public 0/1 window matrices :math:`A_h` (:math:`H_o \times H`) and :math:`A_w`
    (:func:`adaptive_windows`), the window sums :math:`S = A_h x A_w^\top` are local (public
    integers times shares), and the output is :math:`S / N` with the window sizes
    :math:`N = A_h \mathbf{1} (A_w \mathbf{1})^\top`: one truncation with a divisor per element.
    Backward: :math:`dx = A_h^\top (dy / N) A_w`: one truncation, then local.

    Cost: forward and backward one truncation of :math:`|y|` elements each (dealer: 1 round).
    """
    out_hw = pair(output_size, "output_size", 1)

    def mats(shape):
        ah, aw = adaptive_windows(shape[2], out_hw[0]), adaptive_windows(shape[3], out_hw[1])
        counts = np.outer(ah.sum(1), aw.sum(1))
        return ah, aw, counts

    def apply(shares, ah, aw):  # A_h v A_w^T on the last two axes of ring shares (exact)
        v = jnp.einsum("oh,...hw->...ow", jnp.asarray(ah, shares.dtype), shares)
        return jnp.einsum("...ow,pw->...op", v, jnp.asarray(aw, shares.dtype))

    def forward(key, params, x):
        check_input(x, "AdaptiveAvgPool2d")
        if x.shape[2] < out_hw[0] or x.shape[3] < out_hw[1]:
            raise ShareMismatchError(f"AdaptiveAvgPool2d: output size {out_hw} is larger than the input's "
                                     f"{tuple(x.shape[2:])}.")
        ah, aw, counts = mats(x.shape)
        total = x.like(apply(x.shares, ah, aw))
        return truncate(key, total, _per_output(counts, total.shape, total.shares.dtype)), InputShape(x.shape)

    def backward(key, params, in_shape, dy, need_dx: bool = True):
        if not need_dx:
            return {}, None
        ah, aw, counts = mats(in_shape.shape)
        d = truncate(key, dy, _per_output(counts, dy.shape, dy.shares.dtype)).shares
        return {}, dy.like(apply(d, ah.T, aw.T))

    def plain(params, x):
        ah, aw, counts = mats(x.shape)
        x = jnp.asarray(x)
        ah, aw, counts = (jnp.asarray(m, x.dtype) for m in (ah, aw, counts))
        return jnp.einsum("oh,bchw,pw->bcop", ah, x, aw) / counts[None, None]

    return Layer(lambda key: {}, forward, backward, plain)
