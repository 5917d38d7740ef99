r"""Beaver's multiplication protocol, generic over the bilinear map, and the products built on it.

For a bilinear map :math:`\circ` (elementwise product, matrix product, convolution) and a dealer
triple :math:`c = a \circ b`:

.. math::  x \circ y = c + e \circ b + a \circ f + e \circ f, \quad e = x - a,\; f = y - b,

where :math:`e, f` are opened. They are uniformly masked by the dealer's :math:`a, b`, so they
reveal nothing (Beaver, CRYPTO 1991).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ...trace import accounting, diagnostics
from . import dealer
from ...core import gemm, ring
from ...errors import InputTypeError, ProtocolError, ShareMismatchError
from ...core.keys import check_key
from ..shared import Shared, common_fxp, check_same_parties
from .truncation import check_method, truncate_drawn, truncate_shares


MODES = ("protocol", "faithful", "ideal")


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ProtocolError(f"mode must be one of {MODES}, got {mode!r}.")


def beaver(key, x: jax.Array, y: jax.Array, op: Callable, name: str = "beaver",
           mode: str = "protocol", op_opened: Callable | None = None,
           transcript: list | None = None, masks=None) -> jax.Array:
    r"""Shares of :math:`x \circ y` (no truncation) from shares ``x``, ``y`` (``uint64[n, ...]``).

    Args:
        key: PRNG key for the dealer's triple.
        x, y: ``uint64[n_parties, *shape]`` shares.
        op: the bilinear map on ring arrays, e.g. ``jnp.multiply`` or ``jaxmpc.core.gemm.matmul``.
        name: label for cost accounting.
        mode: how the simulator computes the output shares (static):

            - ``"faithful"``: every party's share exactly as in the protocol below
              (:math:`2n + 2` evaluations of ``op``, the dealer's :math:`a \circ b` included);
            - ``"protocol"`` (default): bit-identical shares with :math:`2n - 1` evaluations:
              parties :math:`0..n-2` are computed faithfully (party 0 as
              :math:`c_0 + e \circ (b_0 + f) + a_0 \circ f`), and the last party's share is
              :math:`x \circ y - \sum_{i<n-1} z_i`, which equals its faithful share because the
              shares of a correct protocol sum to :math:`x \circ y`. The dealer's :math:`c` is never
              formed: its first n-1 shares are the same uniform masks;
            - ``"ideal"``: the ideal functionality: :math:`x \circ y` freshly re-shared (1 evaluation).
              Same output distribution (uniform shares of the exact product), not the same bits.
        op_opened: optionally, a bit-identical but faster version of ``op`` for the product of the
            opened (small, fixed-point) values, e.g. :func:`jaxmpc.core.gemm.matmul_small`.
        transcript: if a list, the opened values ``(e, f)`` are appended to it (privacy tests; the
            ideal mode opens nothing and appends nothing).
        masks: the dealer's draws ``(a, b, c_mask)`` (:func:`jaxmpc.protocols.additive.dealer.beaver_masks`) when the
            caller drew them with other material (:func:`jaxmpc.protocols.additive.dealer.with_truncation`); ``key``
            is then unused.
    Returns:
        ``uint64[n_parties, *op_shape]`` shares of the ring product.

    Protocol:
        1. Get a triple :math:`(a, b, c = a \circ b)` from the dealer.
        2. Mask: each party computes its shares of :math:`e = x - a` and :math:`f = y - b`.
        3. Open :math:`e` and :math:`f` together (one round).
        4. Combine: :math:`z_i = c_i + e \circ b_i + a_i \circ f`, and party 0 adds :math:`e \circ f`.

    Cost (every mode models the protocol): 1 round; each party sends :math:`8 (n-1) (|x| + |y|)`
    bytes; the dealer sends :math:`8 (|x| + |y| + |x \circ y|)` bytes to each party.
    """
    check_mode(mode)
    n = x.shape[0]
    a, b, c_mask = masks if masks is not None else dealer.beaver_masks(key, op, x.shape[1:], y.shape[1:], n)
    accounting.record(name, n_parties=n, rounds=1, elements_opened=int(x[0].size + y[0].size),
                      dealer_elements=int(a[0].size + b[0].size + c_mask[0].size))
    opened = op if op_opened is None else op_opened
    if mode == "ideal":
        return ring.shares_from_mask(opened(ring.party_sum(x), ring.party_sum(y)), c_mask)
    e = ring.party_sum(x - a)
    f = ring.party_sum(y - b)
    if transcript is not None:
        transcript.extend([e, f])
    if mode == "faithful":
        c = ring.shares_from_mask(op(ring.party_sum(a), ring.party_sum(b)), c_mask)
        z = c + jax.vmap(op, (None, 0))(e, b) + jax.vmap(op, (0, None))(a, f)
        return ring.add_to_party0(z, op(e, f))
    z0 = c_mask[0] + op(e, b[0] + f) + op(a[0], f)
    zs = [z0[None]]
    if n > 2:
        zs.append(c_mask[1:] + jax.vmap(op, (None, 0))(e, b[1:n - 1]) + jax.vmap(op, (0, None))(a[1:n - 1], f))
    head = jnp.concatenate(zs, axis=0)
    last = opened(ring.party_sum(x), ring.party_sum(y)) - ring.party_sum(head)
    return jnp.concatenate([head, last[None]], axis=0)


def check_operands(key, x, y, fname: str) -> None:
    check_key(key)
    for name, v in (("x", x), ("y", y)):
        if not isinstance(v, Shared):
            raise InputTypeError(
                f"{fname}: {name} must be a jaxmpc.Shared, got {type(v).__name__}. Share it first "
                f"with jaxmpc.share(key, {name}, fxp), or use mul_public for a public operand."
            )
    check_same_parties(x, y)


def product(key, x: Shared, y: Shared, op, name: str, truncation: str, mode: str,
            op_opened=None) -> Shared:
    """The generic bilinear product of two shared values: :func:`beaver` on ``op`` (elementwise
    product, matmul, a convolution), then truncation back to the operands' scale when both are
    fixed point. :func:`mul`, :func:`matmul` and the convolutions of :mod:`jaxmpc.nn.conv` are
    one-line wrappers; ``op_opened`` is a faster, equally exact ``op`` for the opened operands.

    Cost: :func:`beaver`'s, plus the truncation's (:func:`jaxmpc.truncate_shares`).
    """
    check_method(truncation, x.n_parties)
    check_mode(mode)
    if x.fxp is not None and y.fxp is not None:
        fxp = common_fxp(x, y, name)
        if truncation == "dealer":  # the triple and the truncation's material in one draw
            specs = dealer.beaver_specs(op, x.shape, y.shape, x.n_parties)
            triple, trunc = dealer.with_truncation(key, specs, specs[2][1], x.n_parties)
        else:
            triple = trunc = None
        z = beaver(key, x.shares, y.shares, op, name, mode, op_opened, masks=triple)
        diagnostics.observe_product(name, x.shares, y.shares, z, op)  # nothing unless collecting
        with diagnostics.label(name):
            return Shared(_truncate_product(key, trunc, z, fxp.ring_scale, truncation), fxp)
    fxp = x.fxp if x.fxp is not None else y.fxp  # a plain integer (e.g. a 0/1 bit) scales nothing
    z = beaver(key, x.shares, y.shares, op, name, mode, op_opened)
    diagnostics.observe_product(name, x.shares, y.shares, z, op)
    return Shared(z, fxp)


def mul(key, x: Shared, y: Shared, *, truncation: str = "dealer", mode: str = "protocol") -> Shared:
    r"""Elementwise product of two shared values (with broadcasting): :math:`z \approx x y`.

    Beaver's protocol on :math:`v_x v_y = x y s^2`, then truncation by :math:`s`. If either operand
    is a plain integer sharing (``fxp=None``, e.g. a 0/1 bit from :func:`jaxmpc.relu`), the
    product is exact and no truncation is needed.

    Args:
        key: PRNG key (one draw: the triple, and the dealer truncation's masks).
        x, y: :class:`Shared` values with broadcastable shapes, same parties and encoding.
        truncation: ``"dealer"`` (default) or ``"local"`` (2 parties only).
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
    return product(key, x, y, jnp.multiply, "mul", truncation, mode)


def matmul(key, x: Shared, y: Shared, *, truncation: str = "dealer", mode: str = "protocol") -> Shared:
    r"""Matrix product of two shared values with ``jnp.matmul`` shape rules: :math:`z \approx x y`.

    Args:
        key: PRNG key.
        x: :class:`Shared` of shape ``(..., m, k)`` (or ``(k,)``).
        y: :class:`Shared` of shape ``(..., k, n)`` (or ``(k,)``).
        truncation: ``"dealer"`` (default) or ``"local"`` (2 parties only).
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
    return product(key, x, y, gemm.matmul, "matmul", truncation, mode, gemm.matmul_small)


def mul_public(key, x: Shared, c, *, truncation: str = "dealer") -> Shared:
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
    check_method(truncation, x.n_parties)
    v = x._public(c, "c")
    xs = x.broadcast_to(jnp.shape(v)).shares
    z = xs * ring.per_party(v, xs)
    diagnostics.observe_product("mul_public", xs, v, z, jnp.multiply, y_public=True)
    with diagnostics.label("mul_public"):
        return Shared(truncate_shares(key, z, x.fxp.ring_scale, truncation), x.fxp)


def div_public(key, x: Shared, d, *, truncation: str = "dealer") -> Shared:
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
    if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d < 2**62:
        raise InputTypeError(f"div_public: d must be a positive Python int below 2^62, got {d!r}.")
    check_method(truncation, x.n_parties)
    with diagnostics.label("div_public"):
        return Shared(truncate_shares(key, x.shares, jnp.uint64(d), truncation), x.fxp)


def square_sum(key, x: Shared, *, divisor: int = 1, truncation: str = "dealer") -> Shared:
    r"""Sum of squares of a shared value divided by a public integer: :math:`z \approx \sum x^2 / D`.

    Protocol:
        1. Get :math:`([a], [\sum a^2])` from the dealer (:func:`jaxmpc.protocols.additive.dealer.square_sum_pair`).
        2. Open :math:`e = x - a` (one round; uniform).
        3. Combine: :math:`\sum x^2 = \sum a^2 + 2\, e \cdot a + e \cdot e` (party 0 adds
           :math:`e \cdot e`), all at scale :math:`s^2`.
        4. One truncation of the scalar by :math:`s D`.

    Cost: 2 rounds with dealer truncation (1 with local); each party sends :math:`8(n-1)(|x| + 1)`
    bytes; the dealer sends :math:`8(|x| + 1)` bytes (+ truncation material) to each party.
    """
    check_key(key)
    if not isinstance(x, Shared) or x.fxp is None:
        raise InputTypeError("square_sum needs a fixed-point jaxmpc.Shared.")
    check_method(truncation, x.n_parties)
    n = x.n_parties
    flat = x.shares.reshape(n, -1)
    if truncation == "dealer":  # the pair and the truncation's (scalar) material in one draw
        drawn, trunc = dealer.with_truncation(key, dealer.square_sum_specs(flat.shape[1:], n), (), n)
        a, a2 = dealer.complete_square_sum(*drawn)
    else:
        a, a2 = dealer.square_sum_pair(key, flat.shape[1:], n)
        trunc = None
    accounting.record("square_sum", n_parties=n, rounds=1, elements_opened=int(flat.shape[1]),
                      dealer_elements=int(flat.shape[1]) + 1)
    e = ring.party_sum(flat - a)
    z = a2 + jnp.uint64(2) * jnp.sum(a * e[None], axis=1, dtype=ring.DTYPE)
    z = ring.add_to_party0(z, jnp.sum(e * e, dtype=ring.DTYPE))
    diagnostics.observe_product("square_sum", flat, flat, z, lambda a, b: jnp.sum(a * b))
    divisor_ring = x.fxp.ring_scale * jnp.uint64(divisor)
    with diagnostics.label("square_sum"):
        return Shared(_truncate_product(key, trunc, z, divisor_ring, truncation), x.fxp)


def _truncate_product(key, trunc, z: jax.Array, divisor, truncation: str) -> jax.Array:
    """Truncation of a product's shares ``z``: dealer truncation with the masks ``trunc`` drawn
    beside the product's material (:func:`jaxmpc.protocols.additive.dealer.with_truncation`), or local truncation
    (``trunc`` is None), which draws nothing from ``key``."""
    if trunc is not None:
        return truncate_drawn(trunc, z, divisor)
    return truncate_shares(key, z, divisor, truncation)
