r"""Products and divisions of shared values, written once against the protocol family's kernels.

:func:`bilinear` is the one generic product (elementwise, matmul, convolution: the bilinear map is
an argument, as in Beaver's protocol); :func:`mul`, :func:`matmul`, :func:`conv2d` and the
convolution's two gradients (:func:`conv2d_weight_grad`, :func:`conv2d_input_grad`: the adjoint
maps of :mod:`jaxmpc.core.im2col`, bilinear too) are wrappers that check their operands first. :func:`mul_public`,
:func:`div_public` and :func:`truncate` use the family's ``truncate`` kernel, :func:`square_sum` its
``square_sum`` kernel. The family comes from the operands (:func:`jaxmpc.protocols.interface.kernels_of`):
mixing protocols raises :class:`~jaxmpc.errors.ShareMismatchError`.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

import functools

from ..core import gemm, im2col, ring
from ..core.keys import check_key
from ..errors import InputTypeError, ShareMismatchError
from ..trace import diagnostics
from . import interface
from .interface import check_mode
from .shared import Shared, check_same_parties


def check_truncation(truncation, x: Shared) -> str:
    """The truncation option ``truncation`` of ``x``'s family (its default for ``"default"``);
    raises unless the family offers it at ``x``'s party count."""
    return interface.kernels_of(x).truncation_for(truncation, x.n_parties)


def check_operands(key, x, y, fname: str) -> None:
    """Raise unless ``key`` is a key and ``x``, ``y`` are :class:`Shared` under one protocol."""
    check_key(key)
    for name, v in (("x", x), ("y", y)):
        if not isinstance(v, Shared):
            raise InputTypeError(
                f"{fname}: {name} must be a jaxmpc.Shared, got {type(v).__name__}. Share it first "
                f"with jaxmpc.share(key, {name}, fxp), or use mul_public for a public operand."
            )
    check_same_parties(x, y)  # same protocol too


def bilinear(key, x: Shared, y: Shared, op: Callable, name: str, truncation: str = "default",
             mode: str = "protocol", op_opened: Callable | None = None) -> Shared:
    """The generic bilinear product ``op(x, y)`` of two shared values, truncated back to the
    operands' scale when both are fixed point: the family's ``product`` kernel (additive:
    :func:`jaxmpc.protocols.additive.beaver.product`). ``op`` acts on ring arrays without the party
    axis; ``op_opened`` is an equally exact, faster ``op`` for opened (small) operands.

    Cost: the family's ``product`` kernel (additive: Beaver's 1 round plus the truncation's).
    """
    fam = interface.kernels_of(x, y, op=name)
    truncation = fam.truncation_for(truncation, x.n_parties)
    check_mode(mode)
    return fam.kernel("product")(key, x, y, op, name, truncation, mode, op_opened)


def mul(key, x: Shared, y: Shared, *, truncation: str = "default", mode: str = "protocol") -> Shared:
    r"""Elementwise product of two shared values (with broadcasting): :math:`z \approx x y`.

    Beaver's protocol on :math:`v_x v_y = x y s^2`, then truncation by :math:`s`. If either operand
    is a plain integer sharing (``fxp=None``, e.g. a 0/1 bit from :func:`jaxmpc.relu`), the
    product is exact and no truncation is needed.

    Args:
        key: PRNG key (one draw: the triple, and the dealer truncation's masks).
        x, y: :class:`Shared` values with broadcastable shapes, same parties and encoding.
        truncation: a truncation option of the protocol, or ``"default"`` (the default: the family's
            own, additive ``"dealer"``, replicated ``"share"``); additive also ``"local"`` (2 parties),
            ``"pair"``, ``"fixed-mask"`` (insecure), ``"exact"``; see
            :mod:`jaxmpc.protocols.additive.truncation` and :mod:`jaxmpc.protocols.replicated.truncation`.
        mode: ``"protocol"`` (default), ``"faithful"`` or ``"ideal"``; see :func:`beaver`.
    Returns:
        :class:`Shared` of the broadcast shape.

    Cost: Beaver (1 round, :math:`8(n-1)(|x|+|y|)` bytes per party) plus truncation
    (dealer: 1 round, :math:`8(n-1)|z|` bytes per party; local: free).

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> k0, k1, k2 = jax.random.split(jax.random.key(0), 3)
        >>> fxp = jaxmpc.FixedPoint(10, 3)
        >>> x, y = jaxmpc.share(k0, [1.5, -2.0], fxp), jaxmpc.share(k1, [2.0, 0.25], fxp)
        >>> z = jaxmpc.reveal(jaxmpc.mul(k2, x, y))  # within 1.5e-3: truncation rounds at random
        >>> (z.round(2) + 0.0).tolist()
        [3.0, -0.5]
    """
    check_operands(key, x, y, "mul")
    try:
        jnp.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise ShareMismatchError(f"mul: shapes {x.shape} and {y.shape} do not broadcast.") from None
    rank = max(x.ndim, y.ndim)  # equal ranks (size-1 axes broadcast; nothing extra is opened)
    x, y = (v.reshape((1,) * (rank - v.ndim) + v.shape) for v in (x, y))
    return bilinear(key, x, y, jnp.multiply, "mul", truncation, mode)


def matmul(key, x: Shared, y: Shared, *, truncation: str = "default", mode: str = "protocol") -> Shared:
    r"""Matrix product of two shared values with ``jnp.matmul`` shape rules: :math:`z \approx x y`.

    Args:
        key: PRNG key.
        x: :class:`Shared` of shape ``(..., m, k)`` (or ``(k,)``).
        y: :class:`Shared` of shape ``(..., k, n)`` (or ``(k,)``).
        truncation: a truncation option of the protocol, or ``"default"`` (the default: the family's
            own, additive ``"dealer"``, replicated ``"share"``); additive also ``"local"`` (2 parties),
            ``"pair"``, ``"fixed-mask"`` (insecure), ``"exact"``; see
            :mod:`jaxmpc.protocols.additive.truncation` and :mod:`jaxmpc.protocols.replicated.truncation`.
        mode: ``"protocol"`` (default), ``"faithful"`` or ``"ideal"``; see :func:`beaver`.
    Returns:
        :class:`Shared` of shape ``(..., m, n)``.

    Cost: for ``(m, k) @ (k, n)``: Beaver opens :math:`mk + kn` elements in 1 round
    (:math:`8(n_p-1)(mk+kn)` bytes per party), dealer sends :math:`8(mk + kn + mn)` bytes per party;
    dealer truncation adds 1 round and :math:`8(n_p-1)mn` bytes per party.
    """
    check_operands(key, x, y, "matmul")
    try:
        jax.eval_shape(jnp.matmul, jax.ShapeDtypeStruct(x.shape, jnp.float32),
                       jax.ShapeDtypeStruct(y.shape, jnp.float32))
    except (TypeError, ValueError) as e:
        raise ShareMismatchError(f"matmul: shapes {x.shape} and {y.shape} are not compatible: {e}") from None
    return bilinear(key, x, y, gemm.matmul, "matmul", truncation, mode, gemm.matmul_small)


def mul_public(key, x: Shared, c, *, truncation: str = "default") -> Shared:
    r"""Product of a shared value and a public real :math:`c`: :math:`z \approx c x`.

    Each party multiplies its share by :math:`\mathrm{encode}(c)` locally, then the result is
    truncated by :math:`s`. For a public *integer*, ``x * c`` is exact and needs no key.

    Cost: the truncation only (dealer: 1 round, :math:`8(n-1)|z|` bytes per party; local: free).
    """
    check_key(key)
    if not isinstance(x, Shared):
        raise InputTypeError(f"mul_public: x must be a jaxmpc.Shared, got {type(x).__name__}.")
    if x.fxp is None:
        raise InputTypeError("mul_public needs a fixed-point Shared; for integers use x * c.")
    truncation = check_truncation(truncation, x)
    v = x._public(c, "c")
    xs = x.broadcast_to(jnp.shape(v)).shares
    z = xs * ring.per_party(v, xs)
    diagnostics.observe_product("mul_public", xs, v, z, jnp.multiply, y_public=True)
    with diagnostics.label("mul_public"):
        return x.like(_truncate(key, x, z, x.fxp.ring_scale, truncation))


def div_public(key, x: Shared, d, *, truncation: str = "default") -> Shared:
    r"""Division of a shared value by a public positive integer :math:`d`: :math:`z \approx x / d`.

    One truncation by :math:`d` (exact within 2 units for the dealer protocol).

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> x = jaxmpc.share(jax.random.key(0), [[9., 12.], [3.3, 0.]], jaxmpc.FixedPoint(10, 3))
        >>> (jaxmpc.reveal(jaxmpc.div_public(jax.random.key(1), x, 3)).round(2) + 0.0).tolist()
        [[3.0, 4.0], [1.1, 0.0]]
    """
    check_key(key)
    if not isinstance(x, Shared):
        raise InputTypeError(f"div_public: x must be a jaxmpc.Shared, got {type(x).__name__}.")
    top = x.protocol.ring_bits - 2
    if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d < 2**top:
        raise InputTypeError(f"div_public: d must be a positive Python int below 2^{top} (on "
                             f"Z_2^{x.protocol.ring_bits}), got {d!r}.")
    truncation = check_truncation(truncation, x)
    with diagnostics.label("div_public"):
        return x.like(_truncate(key, x, x.shares, d, truncation))


def square_sum(key, x: Shared, *, divisor: int = 1, truncation: str = "default") -> Shared:
    r"""Sum of squares of a shared value divided by a public integer: :math:`z \approx \sum x^2 / D`.

    The family's ``square_sum`` kernel: one opening of :math:`|x|` masked values instead of the
    :math:`2|x|` of an elementwise product.

    Protocol (additive family):
        1. Get :math:`([a], [\sum a^2])` from the dealer (:func:`jaxmpc.protocols.additive.dealer.square_sum_pair`).
        2. Open :math:`e = x - a` (one round; uniform).
        3. Combine: :math:`\sum x^2 = \sum a^2 + 2\, e \cdot a + e \cdot e` (party 0 adds
           :math:`e \cdot e`), all at scale :math:`s^2`.
        4. One truncation of the scalar by :math:`s D`.

    Cost (additive family): 2 rounds with dealer truncation (1 with local); each party sends
    :math:`8(n-1)(|x| + 1)` bytes; the dealer sends :math:`8(|x| + 1)` bytes (+ truncation
    material) to each party.
    """
    check_key(key)
    if not isinstance(x, Shared) or x.fxp is None:
        raise InputTypeError("square_sum needs a fixed-point jaxmpc.Shared.")
    if isinstance(divisor, bool) or not isinstance(divisor, int) or not 1 <= divisor < 2**62:
        raise InputTypeError(f"square_sum: divisor must be a positive Python int below 2^62, got "
                             f"{divisor!r}.")
    truncation = check_truncation(truncation, x)
    return interface.kernels_of(x).kernel("square_sum")(key, x, divisor, truncation)


def truncate(key, x: Shared, divisor, *, truncation: str = "default") -> Shared:
    r"""Shares of :math:`\approx x / d` for a public positive integer :math:`d` (array data, may be
    traced; a scalar or one per element), in the ring: no rescaling of the encoding. The family's
    ``truncate`` kernel (additive: :func:`jaxmpc.protocols.additive.truncation.truncate_shares`).

    Cost: the family's ``truncate`` (additive dealer: 1 round, :math:`8(n-1)|x|` bytes per party).
    """
    check_key(key)
    if not isinstance(x, Shared):
        raise InputTypeError(f"truncate: x must be a jaxmpc.Shared, got {type(x).__name__}.")
    truncation = check_truncation(truncation, x)
    return x.like(_truncate(key, x, x.shares, divisor, truncation))


def truncate_many(key, xs: list, divisors: list, *, truncation: str = "default") -> list:
    """:func:`truncate` of several shared values at once (one dealer draw and one round in the
    additive family): the family's ``truncate_many`` kernel."""
    check_key(key)
    xs = list(xs)
    if not xs:
        return []
    if not all(isinstance(x, Shared) for x in xs):
        raise InputTypeError("truncate_many takes a list of jaxmpc.Shared values.")
    for x in xs[1:]:
        check_same_parties(xs[0], x)
    truncation = check_truncation(truncation, xs[0])
    out = interface.kernels_of(*xs).kernel("truncate_many")(key, [x.shares for x in xs], divisors,
                                                            truncation)
    return [x.like(z) for x, z in zip(xs, out)]


def _truncate(key, x: Shared, shares, divisor, truncation: str):
    return interface.kernels_of(x).kernel("truncate")(key, shares, divisor, truncation)


# ---- convolutions: the bilinear map of core.im2col and its adjoints -----------------------------
def _maps(fn, **static):
    """The map for the masked shares and its twin for the opened (small) values (one float GEMM)."""
    return functools.partial(fn, **static), functools.partial(fn, matmul=gemm.matmul_small, **static)


def conv2d(key, x: Shared, w: Shared, *, stride=1, padding=0, dilation=1, groups: int = 1,
           truncation: str = "default", mode: str = "protocol") -> Shared:
    r"""Convolution of shared values (NCHW, no bias): :math:`y \approx x \star w`.

    Args:
        key: PRNG key (one draw: the triple, and the dealer truncation's masks).
        x: :class:`Shared` ``(B, C, H, W)``.
        w: :class:`Shared` ``(O, C / groups, kh, kw)``, same parties and encoding.
        stride, padding, dilation: ints or (height, width) pairs; zero padding on both sides.
        groups: grouped convolution (``torch.nn.Conv2d``'s ``groups``): :math:`C` and :math:`O`
            split into that many groups, each convolved with its own filters.
        truncation: a truncation option of the protocol, or ``"default"`` (the default: the family's
            own, additive ``"dealer"``, replicated ``"share"``); additive also ``"local"`` (2 parties),
            ``"pair"``, ``"fixed-mask"`` (insecure), ``"exact"``; see
            :mod:`jaxmpc.protocols.additive.truncation` and :mod:`jaxmpc.protocols.replicated.truncation`.
        mode: ``"protocol"`` (default), ``"faithful"`` or ``"ideal"``; see :func:`jaxmpc.protocols.additive.beaver`.
    Returns:
        :class:`Shared` ``(B, O, H_o, W_o)``.

    Protocol: Beaver's (:func:`jaxmpc.protocols.additive.beaver`) with the bilinear map :func:`jaxmpc.core.im2col.conv2d_ring`:
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
                >>> k0, k1, k2 = jax.random.split(jax.random.key(0), 3)
        >>> fxp = jaxmpc.FixedPoint(10, 3)
        >>> x = jaxmpc.share(k0, jax.numpy.arange(9.).reshape(1, 1, 3, 3) / 2, fxp)
        >>> w = jaxmpc.share(k1, [[[[1.0, -1.0]]]], fxp)  # horizontal difference
        >>> (jaxmpc.reveal(jax.jit(jaxmpc.conv2d)(k2, x, w)).round(2) + 0.0).tolist()
        [[[[-0.5, -0.5], [-0.5, -0.5], [-0.5, -0.5]]]]
    """
    check_operands(key, x, w, "conv2d")
    stride, padding = im2col.pair(stride, "stride", 1), im2col.pair(padding, "padding", 0)
    dilation, groups = im2col.pair(dilation, "dilation", 1), im2col.check_groups(groups)
    im2col.check_conv("conv2d", x.shape, w.shape, stride, padding, dilation, groups)
    op, op_opened = _maps(im2col.conv2d_ring, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return bilinear(key, x, w, op, "conv2d", truncation, mode, op_opened)


def conv2d_weight_grad(key, dy: Shared, x: Shared, *, kernel_size, stride=1, padding=0, dilation=1,
                       groups: int = 1, truncation: str = "default", mode: str = "protocol") -> Shared:
    r"""Gradient of :func:`conv2d` with respect to the weight: :math:`dW \approx \sum_b dy_b P_b^\top`.

    Args:
        dy: :class:`Shared` ``(B, O, H_o, W_o)``, the output gradient.
        x: :class:`Shared` ``(B, C, H, W)``, the convolution's input.
        kernel_size, stride, padding, dilation, groups: the convolution's (static).
    Returns:
        :class:`Shared` ``(O, C / groups, kh, kw)``.

    Protocol: Beaver's with the bilinear map :func:`jaxmpc.core.im2col.conv2d_weight_ring` of :math:`(dy, x)`, then
    truncation.

    Cost: 1 round, :math:`8(n-1)(|dy| + |x|)` bytes per party, dealer
    :math:`8(|dy| + |x| + |W|)` bytes per party; plus the truncation of :math:`|W|` elements.
    """
    check_operands(key, dy, x, "conv2d_weight_grad")
    kernel = im2col.pair(kernel_size, "kernel_size", 1)
    stride, padding = im2col.pair(stride, "stride", 1), im2col.pair(padding, "padding", 0)
    dilation, groups = im2col.pair(dilation, "dilation", 1), im2col.check_groups(groups)
    im2col.check_window("conv2d_weight_grad", x.shape, kernel, padding, dilation)
    want = (x.shape[0], None) + im2col.output_size(x.shape[2:], kernel, stride, padding, dilation)
    if dy.ndim != 4 or (dy.shape[0], None) + dy.shape[2:] != want or x.shape[1] % groups or dy.shape[1] % groups:
        raise ShareMismatchError(f"conv2d_weight_grad: dy must have shape (B, O, H_o, W_o) = "
                                 f"{want} for input shape {x.shape}, with C and O multiples of the "
                                 f"{groups} group(s), got {dy.shape}.")
    op, op_opened = _maps(im2col.conv2d_weight_ring, kernel_size=kernel, stride=stride, padding=padding,
                          dilation=dilation, groups=groups)
    return bilinear(key, dy, x, op, "conv2d/weight_grad", truncation, mode, op_opened)


def conv2d_input_grad(key, dy: Shared, w: Shared, *, input_size, stride=1, padding=0, dilation=1,
                      groups: int = 1, truncation: str = "default", mode: str = "protocol") -> Shared:
    r"""Gradient of :func:`conv2d` with respect to its input: :math:`dx \approx \mathrm{fold}(W^\top dy)`.

    Args:
        dy: :class:`Shared` ``(B, O, H_o, W_o)``.
        w: :class:`Shared` ``(O, C / groups, kh, kw)``.
        input_size: ``(H, W)`` of the convolution's input (static); stride, padding, dilation,
            groups: the convolution's.
    Returns:
        :class:`Shared` ``(B, C, H, W)``.

    Protocol: Beaver's with the bilinear map :func:`jaxmpc.core.im2col.conv2d_input_ring` of :math:`(dy, w)`, then
    truncation.

    Cost: 1 round, :math:`8(n-1)(|dy| + |w|)` bytes per party, dealer
    :math:`8(|dy| + |w| + |dx|)` bytes per party; plus the truncation of :math:`|dx|` elements.
    """
    check_operands(key, dy, w, "conv2d_input_grad")
    size = im2col.pair(input_size, "input_size", 1)
    stride, padding = im2col.pair(stride, "stride", 1), im2col.pair(padding, "padding", 0)
    dilation, groups = im2col.pair(dilation, "dilation", 1), im2col.check_groups(groups)
    if w.ndim != 4 or dy.ndim != 4 or dy.shape[1] != w.shape[0] or w.shape[0] % groups or dy.shape[2:] != (
            im2col.output_size(size, w.shape[2:], stride, padding, dilation)):
        raise ShareMismatchError(
            f"conv2d_input_grad: dy {dy.shape} does not match a convolution of an input of size "
            f"{size} with weight {w.shape} (stride {stride}, padding {padding}, dilation {dilation}, "
            f"{groups} group(s)).")
    op, op_opened = _maps(im2col.conv2d_input_ring, input_size=size, stride=stride, padding=padding,
                          dilation=dilation, groups=groups)
    return bilinear(key, dy, w, op, "conv2d/input_grad", truncation, mode, op_opened)
