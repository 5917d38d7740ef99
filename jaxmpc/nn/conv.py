r"""Convolutional layers on shared values: :func:`Conv2d`, :func:`MaxPool2d`, :func:`AvgPool2d`, :func:`Flatten`.

Layout NCHW like PyTorch: inputs ``(B, C, H, W)``, weights ``(O, C, kh, kw)``, outputs
``(B, O, H_o, W_o)`` with :math:`H_o = \lfloor (H + 2 p_h - k_h) / s_h \rfloor + 1` (zero padding
:math:`p`, stride :math:`s`; likewise for :math:`W_o`).

The convolution :math:`y = x \star w` is bilinear in :math:`(x, w)`, so Beaver's protocol computes it
with a dealer triple :math:`(a, b, a \star b)` for the same map (:func:`jaxmpc.protocols.additive.beaver`): no new
protocol. Its two adjoints, which the backward needs, are bilinear too:

.. math::  \frac{\partial L}{\partial w} = \sum_{b, p, q} dy_{b,o,p,q}\, \tilde x_{b,c,s_h p + i, s_w q + j},
           \qquad \frac{\partial L}{\partial x} = \mathrm{fold}\big(w^\top dy\big),

each one Beaver product (and one truncation) of its own.

On the ring all three maps are computed exactly modulo :math:`2^{64}` and fast, by *im2col*: the
:math:`k_h k_w` shifted, strided slices of the zero-padded input (a Python loop over the kernel
offsets, not over windows) stack into the matrix :math:`P` ``[B H_o W_o, k_h k_w C]`` with one row
per window, and the convolution is one ring matrix product :math:`P\, W_{mat}^\top`
(:func:`jaxmpc.core.gemm.matmul`: exact limb GEMMs where they pay, see :mod:`jaxmpc.core.gemm`), since
XLA's ``uint64`` convolution is a naive loop (and has no fast GPU kernel).
The adjoint of :func:`patches`, :func:`fold_patches` (col2im), is a sum of :math:`k_h k_w` shifted,
dilated copies (``lax.pad`` with interior padding, no scatter); it is linear, so parties apply it to
their shares locally. Zero padding is local too (a sharing of 0 is all zeros).

Pooling windows use the same :func:`patches`. Average pooling is a local window sum and one public
division (a truncation). Max pooling is a tournament of secure comparisons over the window that
keeps the one-hot arg-max as shared 0/1 integers, so its backward is one Beaver product of those
bits with :math:`dy` (exact, no truncation, no second comparison).

Example:
    >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
    >>> from jaxmpc import nn
    >>> from jaxmpc.nn import conv
    >>> model = nn.serial(conv.Conv2d(1, 2, 3, padding=1), conv.AvgPool2d(2), nn.ReLU(),
    ...                   conv.Flatten(), nn.Linear(8, 3))
    >>> k_init, k_share, k_x, k_fwd = jax.random.split(jax.random.key(0), 4)
    >>> fxp = jaxmpc.FixedPoint(2, 16)
    >>> params = jaxmpc.share(k_share, model.init(k_init), fxp)
    >>> x = jaxmpc.share(k_x, jax.numpy.ones((1, 1, 4, 4)), fxp)
    >>> y, res = jax.eval_shape(model.forward, k_fwd, params, x)  # shapes only (jit to run it)
    >>> y.shape
    (1, 3)
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..core import gemm, ring
from ..ops.compare import tournament
from ..protocols import interface
from ..protocols.arith import bilinear, check_operands, check_truncation, div_public, mul
from ..protocols.interface import check_mode
from ..errors import InputTypeError, ProtocolError, ShareMismatchError
from .layers import Layer
from ..protocols.shared import Shared


# ---- static configuration --------------------------------------------------------------------------
def _pair(v, name: str, minimum: int) -> tuple[int, int]:
    """``v`` (an int or a pair of ints) as a pair of Python ints ``>= minimum``, else a clear error."""
    vals = (v, v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v
    if (not isinstance(vals, (tuple, list)) or len(vals) != 2
            or not all(isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in vals)):
        raise InputTypeError(f"{name} must be an int or a pair of ints (height, width), got {v!r}.")
    if min(vals) < minimum:
        raise ProtocolError(f"{name} must be >= {minimum} in both dimensions, got {v!r}.")
    return int(vals[0]), int(vals[1])


def output_size(size, kernel_size, stride=1, padding=0) -> tuple[int, int]:
    r"""Spatial output size :math:`(\lfloor (H + 2p_h - k_h)/s_h \rfloor + 1, \dots)` (PyTorch's rule)."""
    (h, w), (kh, kw) = _pair(size, "size", 0), _pair(kernel_size, "kernel_size", 1)
    (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def _check_window(fname: str, shape, kernel, padding) -> None:
    """The input must be ``(B, C, H, W)`` and the padded input at least one window large."""
    if len(shape) != 4:
        raise ShareMismatchError(
            f"{fname}: input must have rank 4 (batch, channels, height, width) in NCHW layout, got "
            f"shape {tuple(shape)}. Reshape it first, e.g. x.reshape(B, 1, H, W) for one channel.")
    h, w = shape[2] + 2 * padding[0], shape[3] + 2 * padding[1]
    if h < kernel[0] or w < kernel[1]:
        raise ShareMismatchError(
            f"{fname}: the kernel {kernel} is larger than the padded input {(h, w)} (input shape "
            f"{tuple(shape)}, padding {padding}); use a smaller kernel or more padding.")


def _check_conv(fname: str, x_shape, w_shape, stride, padding) -> None:
    if len(w_shape) != 4:
        raise ShareMismatchError(
            f"{fname}: weight must have rank 4 (out_channels, in_channels, kh, kw), got shape "
            f"{tuple(w_shape)}.")
    _check_window(fname, x_shape, tuple(w_shape[2:]), padding)
    if x_shape[1] != w_shape[1]:
        raise ShareMismatchError(
            f"{fname}: the input has {x_shape[1]} channels (shape {tuple(x_shape)}, NCHW) but the "
            f"weight expects {w_shape[1]} (shape {tuple(w_shape)}, (out, in, kh, kw)).")


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class InputShape:
    """A static shape kept as a layer's residual: a pytree with no leaves, so it passes through
    ``jit``, ``vmap`` and ``scan`` unchanged (the backward of a pooling or flatten layer needs only
    the shape of its input)."""

    shape: tuple[int, ...]


# ---- im2col and its adjoint (local, linear, any dtype) -----------------------------------------------
def _patches(v: jax.Array, kernel, stride, padding, h_axis: int, t_axis: int) -> jax.Array:
    """Windows of ``v`` over the spatial axes ``(h_axis, h_axis + 1)``, stacked on a new axis at
    ``t_axis`` (kernel offset ``t = i k_w + j``); pairs of static ints in."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = output_size(v.shape[h_axis:h_axis + 2], kernel, stride, padding)
    if ph or pw:
        pads = [(0, 0)] * v.ndim
        pads[h_axis], pads[h_axis + 1] = (ph, ph), (pw, pw)
        v = jnp.pad(v, pads)
    cols = []
    for i in range(kh):
        for j in range(kw):
            start, limit, step = [0] * v.ndim, list(v.shape), [1] * v.ndim
            start[h_axis], start[h_axis + 1] = i, j
            limit[h_axis], limit[h_axis + 1] = i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1
            step[h_axis], step[h_axis + 1] = sh, sw
            cols.append(lax.slice(v, start, limit, step))
    return jnp.stack(cols, axis=t_axis)


def _fold(cols: jax.Array, size, kernel, stride, padding, h_axis: int, t_axis: int) -> jax.Array:
    """The adjoint of :func:`_patches`: ``cols`` with the offsets on ``t_axis``; the spatial axes are
    ``(h_axis, h_axis + 1)`` once that axis is removed."""
    (h, w), (kh, kw), (sh, sw), (ph, pw) = size, kernel, stride, padding
    hp, wp = h + 2 * ph, w + 2 * pw
    zero = jnp.zeros((), cols.dtype)
    out = None
    for i in range(kh):
        for j in range(kw):
            part = lax.index_in_dim(cols, i * kw + j, axis=t_axis, keepdims=False)
            ho, wo = part.shape[h_axis:h_axis + 2]
            config = [(0, 0, 0)] * part.ndim
            config[h_axis] = (i, hp - i - sh * (ho - 1) - 1, sh - 1)  # dilate by the stride, shift
            config[h_axis + 1] = (j, wp - j - sw * (wo - 1) - 1, sw - 1)
            part = lax.pad(part, zero, config)
            out = part if out is None else out + part
    return lax.slice_in_dim(lax.slice_in_dim(out, ph, ph + h, axis=h_axis), pw, pw + w, axis=h_axis + 1)


def patches(v: jax.Array, kernel_size, stride=1, padding=0) -> jax.Array:
    r"""The sliding windows of ``v[..., H, W]``: ``[..., k_h k_w, H_o, W_o]`` (zero padding first).

    Entry ``[..., i k_w + j, p, q]`` is :math:`\tilde v[\dots, s_h p + i, s_w q + j]` of the padded
    :math:`\tilde v`. Built from :math:`k_h k_w` strided slices (a Python loop over the kernel
    offsets), so the program size does not grow with the image. Linear: on shares it is local.

    Example:
        >>> import jax.numpy as jnp
        >>> patches(jnp.arange(9.).reshape(3, 3), 2)[:, 0, 0].tolist()
        [0.0, 1.0, 3.0, 4.0]
    """
    return _patches(v, _pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1),
                    _pair(padding, "padding", 0), v.ndim - 2, v.ndim - 2)


def fold_patches(cols: jax.Array, size, kernel_size, stride=1, padding=0) -> jax.Array:
    r"""The adjoint of :func:`patches` (col2im): ``[..., k_h k_w, H_o, W_o] -> [..., H, W]``.

    Every window entry is added back to the input position it came from (overlaps add up):
    :math:`\sum_{i,j}` of ``cols[..., i k_w + j]`` dilated by the stride and shifted by
    :math:`(i, j)` (``lax.pad`` with interior padding: no scatter), with the padding cropped.

    Example:
        >>> import jax.numpy as jnp
        >>> fold_patches(jnp.ones((4, 2, 2)), (3, 3), 2).tolist()  # how many windows cover each pixel
        [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    return _fold(cols, _pair(size, "size", 0), _pair(kernel_size, "kernel_size", 1),
                 _pair(stride, "stride", 1), _pair(padding, "padding", 0), cols.ndim - 3, cols.ndim - 3)


# ---- the convolution and its adjoints as bilinear maps on ring arrays --------------------------------
# The im2col matrix has one row per window, [B H_o W_o, k_h k_w C], built from the input in NHWC
# layout: the windows of an NHWC array stack into [B, H_o, W_o, T, C] with no transpose of the
# (k_h k_w times larger) patch array. The large dimension is then the rows of every product
# (measured faster than W @ [B, C T, H_o W_o] with both of jaxmpc.core.gemm's CPU methods), and the
# weight, reordered to [O, k_h k_w C], is tiny.
def _rows(x: jax.Array, kernel, stride, padding) -> jax.Array:
    """The im2col matrix ``[B H_o W_o, k_h k_w C]`` of ``x[B, C, H, W]``."""
    cols = _patches(x.transpose(0, 2, 3, 1), kernel, stride, padding, 1, 3)  # [B, Ho, Wo, T, C]
    return cols.reshape(-1, cols.shape[3] * cols.shape[4])


def _weight_matrix(w: jax.Array) -> jax.Array:
    """``w[O, C, kh, kw]`` as ``[O, kh kw C]``, the column order of :func:`_rows`."""
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


def conv2d_ring(x: jax.Array, w: jax.Array, *, stride=1, padding=0, matmul=None) -> jax.Array:
    r"""Ring convolution (cross-correlation, as PyTorch) modulo :math:`2^{64}`, bit-exact.

    :math:`y_{b,o,p,q} = \sum_{c,i,j} w_{o,c,i,j}\, \tilde x_{b,c,s_h p+i, s_w q+j}`, computed as
    the im2col matrix (one row per window) times the reordered weight matrix with the exact ring
    matrix product.

    Args:
        x: ``uint64[B, C, H, W]``.
        w: ``uint64[O, C, kh, kw]``.
        stride, padding: ints or (height, width) pairs (static).
        matmul: the ring matrix product (static; default :func:`jaxmpc.core.gemm.matmul`).
    Returns:
        ``uint64[B, O, H_o, W_o]``, equal to ``lax.conv_general_dilated`` on ``uint64`` (which XLA
        runs as a naive loop on a CPU, and cannot compile for a GPU: cuDNN convolves int8 only).

    Example:
        >>> import jax, jax.numpy as jnp; jax.config.update("jax_enable_x64", True)
        >>> x = jnp.arange(16, dtype=jnp.uint64).reshape(1, 1, 4, 4)
        >>> w = jnp.array([[[[1, 0], [0, 2**64 - 1]]]], jnp.uint64)  # x[p, q] - x[p+1, q+1]
        >>> conv2d_ring(x, w, stride=2).astype(jnp.int64).tolist()
        [[[[-5, -5], [-5, -5]]]]
    """
    matmul = gemm.matmul if matmul is None else matmul
    kernel, stride, padding = tuple(w.shape[2:]), _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    ho, wo = output_size(x.shape[2:], kernel, stride, padding)
    out = matmul(_rows(x, kernel, stride, padding), _weight_matrix(w).T)  # [B L, K] @ [K, O]
    return out.reshape(x.shape[0], ho, wo, w.shape[0]).transpose(0, 3, 1, 2)


def conv2d_weight_ring(dy: jax.Array, x: jax.Array, *, kernel_size, stride=1, padding=0,
                       matmul=None) -> jax.Array:
    r"""The weight adjoint of :func:`conv2d_ring`, bit-exact: :math:`dW^\top = P^\top dY` with the
    im2col matrix :math:`P` ``[B H_o W_o, k_h k_w C]`` and :math:`dY` ``[B H_o W_o, O]``.

    Args:
        dy: ``uint64[B, O, H_o, W_o]``.
        x: ``uint64[B, C, H, W]``.
    Returns:
        ``uint64[O, C, kh, kw]``.
    """
    matmul = gemm.matmul if matmul is None else matmul
    kernel, stride, padding = (_pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1),
                               _pair(padding, "padding", 0))
    c, o = x.shape[1], dy.shape[1]
    rows = _rows(x, kernel, stride, padding)
    dw = matmul(rows.T, dy.transpose(0, 2, 3, 1).reshape(-1, o))  # [K, B L] @ [B L, O]
    return dw.reshape(kernel + (c, o)).transpose(3, 2, 0, 1)


def conv2d_input_ring(dy: jax.Array, w: jax.Array, *, input_size, stride=1, padding=0,
                      matmul=None) -> jax.Array:
    r"""The input adjoint of :func:`conv2d_ring` (a transposed convolution), bit-exact:
    :math:`dx = \mathrm{fold}(dY\, W_{mat})`, :math:`dY` ``[B H_o W_o, O]`` (col2im as in
    :func:`fold_patches`, in NHWC layout).

    Args:
        dy: ``uint64[B, O, H_o, W_o]``.
        w: ``uint64[O, C, kh, kw]``.
        input_size: ``(H, W)`` of the convolution's input (static).
    Returns:
        ``uint64[B, C, H, W]``.
    """
    matmul = gemm.matmul if matmul is None else matmul
    size, stride, padding = (_pair(input_size, "input_size", 0), _pair(stride, "stride", 1),
                             _pair(padding, "padding", 0))
    b, o, ho, wo = dy.shape
    c, kh, kw = w.shape[1:]
    rows = matmul(dy.transpose(0, 2, 3, 1).reshape(-1, o), _weight_matrix(w))  # [B L, O] @ [O, K]
    cols = rows.reshape(b, ho, wo, kh * kw, c)
    return _fold(cols, size, (kh, kw), stride, padding, 1, 3).transpose(0, 3, 1, 2)


def conv2d_plain(x, w, *, stride=1, padding=0):
    """Plaintext twin of :func:`conv2d`: ``lax.conv_general_dilated`` in NCHW / OIHW layout."""
    (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    return lax.conv_general_dilated(x, w, (sh, sw), [(ph, ph), (pw, pw)],
                                    dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                    precision=lax.Precision.HIGHEST)


# ---- protocols -----------------------------------------------------------------------------------
def _maps(fn, **static):
    """The map for the masked shares and its twin for the opened (small) values (one float GEMM)."""
    return functools.partial(fn, **static), functools.partial(fn, matmul=gemm.matmul_small, **static)


def conv2d(key, x: Shared, w: Shared, *, stride=1, padding=0, truncation: str = "dealer",
           mode: str = "protocol") -> Shared:
    r"""Convolution of shared values (NCHW, no bias): :math:`y \approx x \star w`.

    Args:
        key: PRNG key (one draw: the triple, and the dealer truncation's masks).
        x: :class:`Shared` ``(B, C, H, W)``.
        w: :class:`Shared` ``(O, C, kh, kw)``, same parties and encoding.
        stride, padding: ints or (height, width) pairs; zero padding on both sides.
        truncation: ``"dealer"`` (default) or ``"local"`` (2 parties only).
        mode: ``"protocol"`` (default), ``"faithful"`` or ``"ideal"``; see :func:`jaxmpc.protocols.additive.beaver`.
    Returns:
        :class:`Shared` ``(B, O, H_o, W_o)``.

    Protocol: Beaver's (:func:`jaxmpc.protocols.additive.beaver`) with the bilinear map :func:`conv2d_ring`:
        1. Get a triple :math:`(a, b, c = a \star b)` from the dealer.
        2. Mask: :math:`e = x - a`, :math:`f = w - b` (local).
        3. Open :math:`e` and :math:`f` (one round).
        4. Combine :math:`z_i = c_i + e \star b_i + a_i \star f` (party 0 adds :math:`e \star f`),
           then truncate by the scale :math:`s`.

    Cost: Beaver: 1 round; each party sends :math:`8(n-1)(|x| + |w|)` bytes; the dealer sends
    :math:`8(|x| + |w| + |y|)` bytes to each party; dealer truncation: 1 round,
    :math:`8(n-1)|y|` bytes per party and :math:`24|y|` dealer bytes per party.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> from jaxmpc.nn import conv
        >>> k0, k1, k2 = jax.random.split(jax.random.key(0), 3)
        >>> fxp = jaxmpc.FixedPoint(10, 3)
        >>> x = jaxmpc.share(k0, jax.numpy.arange(9.).reshape(1, 1, 3, 3) / 2, fxp)
        >>> w = jaxmpc.share(k1, [[[[1.0, -1.0]]]], fxp)  # horizontal difference
        >>> (jaxmpc.reveal(jax.jit(conv.conv2d)(k2, x, w)).round(2) + 0.0).tolist()
        [[[[-0.5, -0.5], [-0.5, -0.5], [-0.5, -0.5]]]]
    """
    check_operands(key, x, w, "conv2d")
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    _check_conv("conv2d", x.shape, w.shape, stride, padding)
    op, op_opened = _maps(conv2d_ring, stride=stride, padding=padding)
    return bilinear(key, x, w, op, "conv2d", truncation, mode, op_opened)


def conv2d_weight_grad(key, dy: Shared, x: Shared, *, kernel_size, stride=1, padding=0,
                       truncation: str = "dealer", mode: str = "protocol") -> Shared:
    r"""Gradient of :func:`conv2d` with respect to the weight: :math:`dW \approx \sum_b dy_b P_b^\top`.

    Args:
        dy: :class:`Shared` ``(B, O, H_o, W_o)``, the output gradient.
        x: :class:`Shared` ``(B, C, H, W)``, the convolution's input.
        kernel_size, stride, padding: the convolution's (static).
    Returns:
        :class:`Shared` ``(O, C, kh, kw)``.

    Protocol: Beaver's with the bilinear map :func:`conv2d_weight_ring` of :math:`(dy, x)`, then
    truncation.

    Cost: 1 round, :math:`8(n-1)(|dy| + |x|)` bytes per party, dealer
    :math:`8(|dy| + |x| + |W|)` bytes per party; plus the truncation of :math:`|W|` elements.
    """
    check_operands(key, dy, x, "conv2d_weight_grad")
    kernel = _pair(kernel_size, "kernel_size", 1)
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    _check_window("conv2d_weight_grad", x.shape, kernel, padding)
    want = (x.shape[0], None) + output_size(x.shape[2:], kernel, stride, padding)
    if dy.ndim != 4 or (dy.shape[0], None) + dy.shape[2:] != want:
        raise ShareMismatchError(f"conv2d_weight_grad: dy must have shape (B, O, H_o, W_o) = "
                                 f"{want} for input shape {x.shape}, got {dy.shape}.")
    op, op_opened = _maps(conv2d_weight_ring, kernel_size=kernel, stride=stride, padding=padding)
    return bilinear(key, dy, x, op, "conv2d/weight_grad", truncation, mode, op_opened)


def conv2d_input_grad(key, dy: Shared, w: Shared, *, input_size, stride=1, padding=0,
                      truncation: str = "dealer", mode: str = "protocol") -> Shared:
    r"""Gradient of :func:`conv2d` with respect to its input: :math:`dx \approx \mathrm{fold}(W^\top dy)`.

    Args:
        dy: :class:`Shared` ``(B, O, H_o, W_o)``.
        w: :class:`Shared` ``(O, C, kh, kw)``.
        input_size: ``(H, W)`` of the convolution's input (static).
    Returns:
        :class:`Shared` ``(B, C, H, W)``.

    Protocol: Beaver's with the bilinear map :func:`conv2d_input_ring` of :math:`(dy, w)`, then
    truncation.

    Cost: 1 round, :math:`8(n-1)(|dy| + |w|)` bytes per party, dealer
    :math:`8(|dy| + |w| + |dx|)` bytes per party; plus the truncation of :math:`|dx|` elements.
    """
    check_operands(key, dy, w, "conv2d_input_grad")
    size = _pair(input_size, "input_size", 1)
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    if w.ndim != 4 or dy.ndim != 4 or dy.shape[1] != w.shape[0] or dy.shape[2:] != output_size(
            size, w.shape[2:], stride, padding):
        raise ShareMismatchError(
            f"conv2d_input_grad: dy {dy.shape} does not match a convolution of an input of size "
            f"{size} with weight {w.shape} (stride {stride}, padding {padding}).")
    op, op_opened = _maps(conv2d_input_ring, input_size=size, stride=stride, padding=padding)
    return bilinear(key, dy, w, op, "conv2d/input_grad", truncation, mode, op_opened)


# ---- layers ---------------------------------------------------------------------------------------
def _check_input(x, fname: str, channels: int | None = None) -> None:
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


def Conv2d(in_channels: int, out_channels: int, kernel_size, *, stride=1, padding=0,
           truncation: str = "dealer", mode: str = "protocol") -> Layer:
    r"""2-d convolution layer in PyTorch layout: :math:`y = x \star W + b` (NCHW, OIHW).

    Params: ``{"weight": (out, in, kh, kw), "bias": (out,)}``; init
    :math:`U(-1/\sqrt{f}, 1/\sqrt{f})` with fan-in :math:`f = \text{in}\, k_h k_w`, like PyTorch.

    Forward: one Beaver convolution (:func:`conv2d`) and a local bias add. Residual: :math:`x`.
    Backward: :math:`dW` by :func:`conv2d_weight_grad`, :math:`db = \sum_{b,p,q} dy` (local),
    :math:`dx` by :func:`conv2d_input_grad` (skipped when ``need_dx`` is False).

    Cost per step: forward 1 Beaver convolution; backward 2 (1 without ``dx``); each 1 round plus a
    dealer truncation (1 round).
    """
    kernel = _pair(kernel_size, "kernel_size", 1)
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise InputTypeError(f"Conv2d: {name} must be a positive int, got {v!r}.")
    check_mode(mode)
    opts = {"stride": stride, "padding": padding, "truncation": truncation, "mode": mode}

    def init(key):
        k_w, k_b = jax.random.split(key)
        bound = 1.0 / math.sqrt(in_channels * kernel[0] * kernel[1])
        shape = (out_channels, in_channels) + kernel
        return {"weight": jax.random.uniform(k_w, shape, jnp.float64, -bound, bound),
                "bias": jax.random.uniform(k_b, (out_channels,), jnp.float64, -bound, bound)}

    def forward(key, params, x):
        _check_input(x, "Conv2d", in_channels)
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
        y = conv2d_plain(x, params["weight"], stride=stride, padding=padding)
        return y + params["bias"][None, :, None, None]

    return Layer(init, forward, backward, plain)


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
    kernel = _pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else _pair(stride, "stride", 1)
    check_mode(mode)

    def forward(key, params, x):
        _check_input(x, "MaxPool2d")
        _check_window("MaxPool2d", x.shape, kernel, (0, 0))
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
    kernel = _pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else _pair(stride, "stride", 1)
    window = kernel[0] * kernel[1]

    def forward(key, params, x):
        _check_input(x, "AvgPool2d")
        _check_window("AvgPool2d", x.shape, kernel, (0, 0))
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


def Flatten() -> Layer:
    """Flatten every axis but the batch: ``(B, ...) -> (B, prod(...))`` (local, like ``nn.Flatten``).

    The backward reshapes the gradient back (the residual is the input's static shape).
    """
    def forward(key, params, x):
        if not isinstance(x, Shared) or x.ndim < 1:
            raise InputTypeError(f"Flatten: x must be a jaxmpc.Shared with a batch axis, got {x!r}.")
        return x.reshape(x.shape[0], -1), InputShape(x.shape)

    def backward(key, params, in_shape, dy, need_dx: bool = True):
        return {}, (dy.reshape(in_shape.shape) if need_dx else None)

    return Layer(lambda key: {}, forward, backward, lambda params, x: x.reshape(x.shape[0], -1))

