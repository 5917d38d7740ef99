r"""Convolution as a bilinear map on ring arrays, by im2col; its two adjoints; the window
helpers pooling uses.

Layout NCHW like PyTorch: inputs ``(B, C, H, W)``, weights ``(O, C, kh, kw)``, outputs
``(B, O, H_o, W_o)`` with :math:`H_o = \lfloor (H + 2 p_h - k_h) / s_h \rfloor + 1` (zero padding
:math:`p`, stride :math:`s`; likewise for :math:`W_o`).

On the ring all three maps (the convolution and its weight and input adjoints) are computed
exactly modulo :math:`2^{64}` and fast, by *im2col*: the :math:`k_h k_w` shifted, strided slices of
the zero-padded input (a Python loop over the kernel offsets, not over windows) stack into the
matrix :math:`P` ``[B H_o W_o, k_h k_w C]`` with one row per window, and the convolution is one ring
matrix product :math:`P\, W_{mat}^\top` (:func:`jaxmpc.core.gemm.matmul`), since XLA's ``uint64``
convolution is a naive loop (and has no fast GPU kernel). The adjoint of :func:`patches`,
:func:`fold_patches` (col2im), is a sum of :math:`k_h k_w` shifted, dilated copies (``lax.pad`` with
interior padding, no scatter); it is linear, so parties apply it to their shares locally. Zero
padding is local too (a sharing of 0 is all zeros). The protocols on shared values are
:func:`jaxmpc.protocols.arith.conv2d` and its gradients.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..errors import InputTypeError, ProtocolError, ShareMismatchError
from . import gemm


# ---- static configuration --------------------------------------------------------------------------
def pair(v, name: str, minimum: int) -> tuple[int, int]:
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
    (h, w), (kh, kw) = pair(size, "size", 0), pair(kernel_size, "kernel_size", 1)
    (sh, sw), (ph, pw) = pair(stride, "stride", 1), pair(padding, "padding", 0)
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def check_window(fname: str, shape, kernel, padding) -> None:
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


def check_conv(fname: str, x_shape, w_shape, stride, padding) -> None:
    if len(w_shape) != 4:
        raise ShareMismatchError(
            f"{fname}: weight must have rank 4 (out_channels, in_channels, kh, kw), got shape "
            f"{tuple(w_shape)}.")
    check_window(fname, x_shape, tuple(w_shape[2:]), padding)
    if x_shape[1] != w_shape[1]:
        raise ShareMismatchError(
            f"{fname}: the input has {x_shape[1]} channels (shape {tuple(x_shape)}, NCHW) but the "
            f"weight expects {w_shape[1]} (shape {tuple(w_shape)}, (out, in, kh, kw)).")


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
    return _patches(v, pair(kernel_size, "kernel_size", 1), pair(stride, "stride", 1),
                    pair(padding, "padding", 0), v.ndim - 2, v.ndim - 2)


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
    return _fold(cols, pair(size, "size", 0), pair(kernel_size, "kernel_size", 1),
                 pair(stride, "stride", 1), pair(padding, "padding", 0), cols.ndim - 3, cols.ndim - 3)


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
    kernel, stride, padding = tuple(w.shape[2:]), pair(stride, "stride", 1), pair(padding, "padding", 0)
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
    kernel, stride, padding = (pair(kernel_size, "kernel_size", 1), pair(stride, "stride", 1),
                               pair(padding, "padding", 0))
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
    size, stride, padding = (pair(input_size, "input_size", 0), pair(stride, "stride", 1),
                             pair(padding, "padding", 0))
    b, o, ho, wo = dy.shape
    c, kh, kw = w.shape[1:]
    rows = matmul(dy.transpose(0, 2, 3, 1).reshape(-1, o), _weight_matrix(w))  # [B L, O] @ [O, K]
    cols = rows.reshape(b, ho, wo, kh * kw, c)
    return _fold(cols, size, (kh, kw), stride, padding, 1, 3).transpose(0, 3, 1, 2)


def conv2d_plain(x, w, *, stride=1, padding=0):
    """Plaintext twin of :func:`conv2d`: ``lax.conv_general_dilated`` in NCHW / OIHW layout."""
    (sh, sw), (ph, pw) = pair(stride, "stride", 1), pair(padding, "padding", 0)
    return lax.conv_general_dilated(x, w, (sh, sw), [(ph, ph), (pw, pw)],
                                    dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                    precision=lax.Precision.HIGHEST)
