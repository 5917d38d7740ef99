r"""Beaver's multiplication protocol, generic over the bilinear map: the additive family's
``product`` and ``square_sum`` kernels.

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
from ...core import ring
from ..interface import check_mode
from ..shared import Shared, common_fxp
from .truncation import DRAWS, check_method, truncate_drawn, truncate_shares


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

    Cost (every mode models the protocol; :math:`w = \ell/8` bytes per ring element): 1 round; each
    party sends :math:`w (n-1) (|x| + |y|)` bytes; the dealer sends
    :math:`w (|x| + |y| + |x \circ y|)` bytes to each party.
    """
    check_mode(mode)
    n = x.shape[0]
    a, b, c_mask = masks if masks is not None else dealer.beaver_masks(key, op, x.shape[1:], y.shape[1:],
                                                                       n, x.dtype)
    bits = ring.bits_of(x)
    accounting.record(name, n_parties=n, rounds=1, elements_opened=int(x[0].size + y[0].size),
                      bits_per_element=bits, dealer_elements=int(a[0].size + b[0].size + c_mask[0].size),
                      dealer_bits=bits)
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


def product(key, x: Shared, y: Shared, op, name: str, truncation: str, mode: str,
            op_opened=None) -> Shared:
    """The generic bilinear product of two shared values: :func:`beaver` on ``op`` (elementwise
    product, matmul, a convolution), then truncation back to the operands' scale when both are
    fixed point: the additive family's ``product`` kernel, which :func:`jaxmpc.mul`,
    :func:`jaxmpc.matmul` and the convolutions of :mod:`jaxmpc.nn.conv` reach through
    :func:`jaxmpc.protocols.arith.bilinear`; ``op_opened`` is a faster, equally exact ``op`` for
    the opened operands.

    Cost: :func:`beaver`'s, plus the truncation's (:func:`jaxmpc.truncate_shares`).
    """
    check_method(truncation, x.n_parties)
    check_mode(mode)
    if x.fxp is not None and y.fxp is not None:
        fxp = common_fxp(x, y, name)
        if truncation == "dealer":  # the triple and the truncation's material in one draw
            specs = dealer.beaver_specs(op, x.shape, y.shape, x.n_parties, x.shares.dtype)
            triple, trunc = dealer.with_truncation(key, specs, specs[2][1], x.n_parties, x.shares.dtype)
        else:
            triple = trunc = None
        key, k_trunc = _keys_for(key, truncation)
        z = beaver(key, x.shares, y.shares, op, name, mode, op_opened, masks=triple)
        diagnostics.observe_product(name, x.shares, y.shares, z, op)  # nothing unless collecting
        with diagnostics.label(name):
            return x.like(_truncate_product(k_trunc, trunc, z, fxp.ring_scale, truncation), fxp)
    fxp = x.fxp if x.fxp is not None else y.fxp  # a plain integer (e.g. a 0/1 bit) scales nothing
    z = beaver(key, x.shares, y.shares, op, name, mode, op_opened)
    diagnostics.observe_product(name, x.shares, y.shares, z, op)
    return x.like(z, fxp)


def square_sum(key, x: Shared, divisor: int, truncation: str) -> Shared:
    r"""Sum of squares of a shared value divided by a public integer: :math:`z \approx \sum x^2 / D`
    (the additive family's ``square_sum`` kernel; :func:`jaxmpc.square_sum` checks the inputs).

    Protocol:
        1. Get :math:`([a], [\sum a^2])` from the dealer (:func:`jaxmpc.protocols.additive.dealer.square_sum_pair`).
        2. Open :math:`e = x - a` (one round; uniform).
        3. Combine: :math:`\sum x^2 = \sum a^2 + 2\, e \cdot a + e \cdot e` (party 0 adds
           :math:`e \cdot e`), all at scale :math:`s^2`.
        4. One truncation of the scalar by :math:`s D`.

    Cost: 2 rounds with dealer truncation (1 with local); each party sends :math:`w(n-1)(|x| + 1)`
    bytes; the dealer sends :math:`w(|x| + 1)` bytes (+ truncation material) to each party
    (:math:`w = \ell/8`).
    """
    n = x.n_parties
    flat = x.shares.reshape(n, -1)
    words = flat.dtype
    if truncation == "dealer":  # the pair and the truncation's (scalar) material in one draw
        drawn, trunc = dealer.with_truncation(key, dealer.square_sum_specs(flat.shape[1:], n), (), n,
                                              words)
        a, a2 = dealer.complete_square_sum(*drawn)
        k_trunc = key  # unused: the masks are drawn
    else:
        key, k_trunc = _keys_for(key, truncation)
        a, a2 = dealer.square_sum_pair(key, flat.shape[1:], n, words)
        trunc = None
    bits = ring.bits_of(flat)
    accounting.record("square_sum", n_parties=n, rounds=1, elements_opened=int(flat.shape[1]),
                      bits_per_element=bits, dealer_elements=int(flat.shape[1]) + 1, dealer_bits=bits)
    e = ring.party_sum(flat - a)
    z = a2 + ring.word(2, words) * jnp.sum(a * e[None], axis=1, dtype=words)
    z = ring.add_to_party0(z, jnp.sum(e * e, dtype=words))
    diagnostics.observe_product("square_sum", flat, flat, z, lambda a, b: jnp.sum(a * b))
    divisor_ring = x.fxp.ring_scale * jnp.asarray(divisor, words)
    with diagnostics.label("square_sum"):
        return x.like(_truncate_product(k_trunc, trunc, z, divisor_ring, truncation))


def _keys_for(key, truncation: str):
    """``(key of the product, key of its truncation)``: one split where the truncation draws material
    of its own (``"pair"``, ``"exact"``); ``"dealer"`` draws beside the product (one key), and
    ``"local"`` / ``"fixed-mask"`` draw nothing."""
    if truncation in DRAWS and truncation != "dealer":
        return tuple(jax.random.split(key))
    return key, key


def _truncate_product(key, trunc, z: jax.Array, divisor, truncation: str) -> jax.Array:
    """Truncation of a product's shares ``z``: dealer truncation with the masks ``trunc`` drawn
    beside the product's material (:func:`jaxmpc.protocols.additive.dealer.with_truncation`), or
    (``trunc`` is None) any other option with its own ``key``."""
    if trunc is not None:
        return truncate_drawn(trunc, z, divisor)
    return truncate_shares(key, z, divisor, truncation)
