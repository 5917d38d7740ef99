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


def output_size(size, kernel_size, stride=1, padding=0, dilation=1) -> tuple[int, int]:
    r"""Spatial output size :math:`(\lfloor (H + 2p_h - d_h(k_h - 1) - 1)/s_h \rfloor + 1, \dots)`
    (PyTorch's rule; dilation :math:`d` spreads the kernel's taps :math:`d` apart)."""
    (h, w), (kh, kw) = pair(size, "size", 0), pair(kernel_size, "kernel_size", 1)
    (sh, sw), (ph, pw) = pair(stride, "stride", 1), pair(padding, "padding", 0)
    dh, dw = pair(dilation, "dilation", 1)
    return (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1


def check_window(fname: str, shape, kernel, padding, dilation=(1, 1)) -> None:
    """The input must be ``(B, C, H, W)`` and the padded input at least one (dilated) window large."""
    if len(shape) != 4:
        raise ShareMismatchError(
            f"{fname}: input must have rank 4 (batch, channels, height, width) in NCHW layout, got "
            f"shape {tuple(shape)}. Reshape it first, e.g. x.reshape(B, 1, H, W) for one channel.")
    h, w = shape[2] + 2 * padding[0], shape[3] + 2 * padding[1]
    span = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    if h < span[0] or w < span[1]:
        raise ShareMismatchError(
            f"{fname}: the kernel {kernel} (spanning {span} with dilation {tuple(dilation)}) is larger "
            f"than the padded input {(h, w)} (input shape {tuple(shape)}, padding {padding}); use a "
            "smaller kernel or more padding.")


def check_conv(fname: str, x_shape, w_shape, stride, padding, dilation=(1, 1), groups: int = 1) -> None:
    if len(w_shape) != 4:
        raise ShareMismatchError(
            f"{fname}: weight must have rank 4 (out_channels, in_channels / groups, kh, kw), got shape "
            f"{tuple(w_shape)}.")
    check_window(fname, x_shape, tuple(w_shape[2:]), padding, dilation)
    if x_shape[1] != w_shape[1] * groups or w_shape[0] % groups:
        raise ShareMismatchError(
            f"{fname}: the input has {x_shape[1]} channels (shape {tuple(x_shape)}, NCHW) but the "
            f"weight (shape {tuple(w_shape)}, (out, in / groups, kh, kw)) expects {w_shape[1]} per group "
            f"in {groups} group(s), and out = {w_shape[0]} must be a multiple of the groups.")


def check_groups(groups) -> int:
    """``groups`` as a positive int (:class:`InputTypeError` otherwise)."""
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise InputTypeError(f"groups must be a positive int, got {groups!r}.")
    return int(groups)


# ---- im2col and its adjoint (local, linear, any dtype) -----------------------------------------------
def _patches(v: jax.Array, kernel, stride, padding, h_axis: int, t_axis: int, dilation=(1, 1)) -> jax.Array:
    """Windows of ``v`` over the spatial axes ``(h_axis, h_axis + 1)``, stacked on a new axis at
    ``t_axis`` (kernel offset ``t = i k_w + j``, tap at ``(d_h i, d_w j)``); pairs of static ints in."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    ho, wo = output_size(v.shape[h_axis:h_axis + 2], kernel, stride, padding, dilation)
    if ph or pw:
        pads = [(0, 0)] * v.ndim
        pads[h_axis], pads[h_axis + 1] = (ph, ph), (pw, pw)
        v = jnp.pad(v, pads)
    cols = []
    for i in range(kh):
        for j in range(kw):
            start, limit, step = [0] * v.ndim, list(v.shape), [1] * v.ndim
            start[h_axis], start[h_axis + 1] = dh * i, dw * j
            limit[h_axis], limit[h_axis + 1] = dh * i + sh * (ho - 1) + 1, dw * j + sw * (wo - 1) + 1
            step[h_axis], step[h_axis + 1] = sh, sw
            cols.append(lax.slice(v, start, limit, step))
    return jnp.stack(cols, axis=t_axis)


def _fold(cols: jax.Array, size, kernel, stride, padding, h_axis: int, t_axis: int,
          dilation=(1, 1)) -> jax.Array:
    """The adjoint of :func:`_patches`: ``cols`` with the offsets on ``t_axis``; the spatial axes are
    ``(h_axis, h_axis + 1)`` once that axis is removed."""
    (h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw) = size, kernel, stride, padding, dilation
    hp, wp = h + 2 * ph, w + 2 * pw
    zero = jnp.zeros((), cols.dtype)
    out = None
    for i in range(kh):
        for j in range(kw):
            part = lax.index_in_dim(cols, i * kw + j, axis=t_axis, keepdims=False)
            ho, wo = part.shape[h_axis:h_axis + 2]
            config = [(0, 0, 0)] * part.ndim
            config[h_axis] = (dh * i, hp - dh * i - sh * (ho - 1) - 1, sh - 1)  # dilate by the stride, shift
            config[h_axis + 1] = (dw * j, wp - dw * j - sw * (wo - 1) - 1, sw - 1)
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
def _rows(x: jax.Array, kernel, stride, padding, dilation=(1, 1), groups: int = 1) -> jax.Array:
    """The im2col matrices ``[G, B H_o W_o, k_h k_w C/G]`` of ``x[B, C, H, W]``, one per group."""
    cols = _patches(x.transpose(0, 2, 3, 1), kernel, stride, padding, 1, 3, dilation)  # [B, Ho, Wo, T, C]
    t, c = cols.shape[3], cols.shape[4]
    if groups == 1:
        return cols.reshape(1, -1, t * c)
    cols = cols.reshape(-1, t, groups, c // groups).transpose(2, 0, 1, 3)  # [G, B L, T, C/G]
    return cols.reshape(groups, -1, t * (c // groups))


def _weight_matrix(w: jax.Array, groups: int = 1) -> jax.Array:
    """``w[O, C/G, kh, kw]`` as ``[G, O/G, kh kw C/G]``, the column order of :func:`_rows`."""
    o = w.shape[0]
    return w.transpose(0, 2, 3, 1).reshape(groups, o // groups, -1)


def _bmm(matmul, a: jax.Array, b: jax.Array) -> jax.Array:
    """``[G, m, k] @ [G, k, n]`` with the ring product (one 2-d product when G = 1)."""
    return matmul(a[0], b[0])[None] if a.shape[0] == 1 else matmul(a, b)


def conv2d_ring(x: jax.Array, w: jax.Array, *, stride=1, padding=0, dilation=1, groups: int = 1,
                matmul=None) -> jax.Array:
    r"""Ring convolution (cross-correlation, as PyTorch) modulo :math:`2^{64}`, bit-exact.

    :math:`y_{b,o,p,q} = \sum_{c,i,j} w_{o,c,i,j}\, \tilde x_{b,g C_g + c,s_h p+d_h i, s_w q+d_w j}`
    for output channel :math:`o` in group :math:`g` (:math:`C_g = C/G` input channels a group),
    computed as the im2col matrix of each group (one row per window) times the group's reordered
    weight matrix with the exact ring matrix product.

    Args:
        x: ``uint64[B, C, H, W]``.
        w: ``uint64[O, C/G, kh, kw]``.
        stride, padding, dilation: ints or (height, width) pairs (static).
        groups: :math:`G`, dividing :math:`C` and :math:`O` (static).
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
    dilation = pair(dilation, "dilation", 1)
    ho, wo = output_size(x.shape[2:], kernel, stride, padding, dilation)
    rows = _rows(x, kernel, stride, padding, dilation, groups)
    out = _bmm(matmul, rows, _weight_matrix(w, groups).transpose(0, 2, 1))  # [G, B L, K] @ [G, K, O/G]
    out = out.transpose(1, 0, 2).reshape(x.shape[0], ho, wo, w.shape[0])
    return out.transpose(0, 3, 1, 2)


def conv2d_weight_ring(dy: jax.Array, x: jax.Array, *, kernel_size, stride=1, padding=0, dilation=1,
                       groups: int = 1, matmul=None) -> jax.Array:
    r"""The weight adjoint of :func:`conv2d_ring`, bit-exact: :math:`dW^\top = P^\top dY` with the
    im2col matrix :math:`P` ``[B H_o W_o, k_h k_w C]`` and :math:`dY` ``[B H_o W_o, O]``.

    Args:
        dy: ``uint64[B, O, H_o, W_o]``.
        x: ``uint64[B, C, H, W]``.
    Returns:
        ``uint64[O, C/G, kh, kw]`` (per group, :math:`P_g^\top dY_g`).
    """
    matmul = gemm.matmul if matmul is None else matmul
    kernel, stride, padding = (pair(kernel_size, "kernel_size", 1), pair(stride, "stride", 1),
                               pair(padding, "padding", 0))
    dilation = pair(dilation, "dilation", 1)
    cg, o = x.shape[1] // groups, dy.shape[1]
    rows = _rows(x, kernel, stride, padding, dilation, groups)  # [G, B L, K]
    dyg = dy.transpose(0, 2, 3, 1).reshape(-1, groups, o // groups).transpose(1, 0, 2)  # [G, B L, O/G]
    dw = _bmm(matmul, rows.transpose(0, 2, 1), dyg)  # [G, K, O/G]
    dw = dw.reshape((groups,) + kernel + (cg, o // groups)).transpose(0, 4, 3, 1, 2)
    return dw.reshape((o, cg) + kernel)


def conv2d_input_ring(dy: jax.Array, w: jax.Array, *, input_size, stride=1, padding=0, dilation=1,
                      groups: int = 1, matmul=None) -> jax.Array:
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
    dilation = pair(dilation, "dilation", 1)
    b, o, ho, wo = dy.shape
    cg, kh, kw = w.shape[1:]
    dyg = dy.transpose(0, 2, 3, 1).reshape(-1, groups, o // groups).transpose(1, 0, 2)  # [G, B L, O/G]
    rows = _bmm(matmul, dyg, _weight_matrix(w, groups))  # [G, B L, O/G] @ [G, O/G, K]
    cols = rows.reshape(groups, b, ho, wo, kh * kw, cg).transpose(1, 2, 3, 4, 0, 5)
    cols = cols.reshape(b, ho, wo, kh * kw, groups * cg)
    return _fold(cols, size, (kh, kw), stride, padding, 1, 3, dilation).transpose(0, 3, 1, 2)


def conv2d_plain(x, w, *, stride=1, padding=0, dilation=1, groups: int = 1):
    """Plaintext twin of :func:`conv2d`: ``lax.conv_general_dilated`` in NCHW / OIHW layout."""
    (sh, sw), (ph, pw) = pair(stride, "stride", 1), pair(padding, "padding", 0)
    return lax.conv_general_dilated(x, w, (sh, sw), [(ph, ph), (pw, pw)],
                                    rhs_dilation=pair(dilation, "dilation", 1),
                                    dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                    feature_group_count=groups, precision=lax.Precision.HIGHEST)
