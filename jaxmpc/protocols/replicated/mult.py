r"""Multiplication of replicated shared values, generic over the bilinear map: the replicated
family's ``product`` and ``square_sum`` kernels.

For a bilinear map :math:`\circ` (elementwise product, matrix product, convolution) and components
:math:`x = x_0 + x_1 + x_2`, :math:`y = y_0 + y_1 + y_2` with party :math:`i` holding
:math:`(x_i, x_{i+1}), (y_i, y_{i+1})` (ABY3, Mohassel & Rindal, CCS 2018, Sec. 2.2; Araki et al.,
CCS 2016):

.. math::  x \circ y = \sum_i z_i, \quad
           z_i = x_i \circ y_i + x_i \circ y_{i+1} + x_{i+1} \circ y_i + \alpha_i,

with the zero-sharing :math:`\alpha` of :mod:`jaxmpc.protocols.replicated.prf` (the nine cross terms
:math:`x_j \circ y_k` split among the parties, each holding the three it can compute). The
:math:`z_i` are a 3-out-of-3 sharing; party :math:`i` sends :math:`z_i` to party :math:`i - 1`, which
restores 2-out-of-3 sharing. What party :math:`i` receives, :math:`z_{i+1}`, is masked by
:math:`r_{i+2}` inside :math:`\alpha_{i+1}`, which it lacks: uniform.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ...core import ring
from ...trace import accounting, diagnostics
from ..interface import check_mode
from ..shared import Shared, common_fxp
from . import prf
from .truncation import check_method, truncate_shares


def _out_shape(op: Callable, x: jax.Array, y: jax.Array) -> tuple:
    return tuple(jax.eval_shape(op, jax.ShapeDtypeStruct(x.shape[1:], x.dtype),
                                jax.ShapeDtypeStruct(y.shape[1:], y.dtype)).shape)


def reshare_product(key, x: jax.Array, y: jax.Array, op: Callable, name: str = "mul",
                    mode: str = "protocol", op_opened: Callable | None = None,
                    transcript: list | None = None, r: jax.Array | None = None) -> jax.Array:
    r"""Components of :math:`x \circ y` (no truncation) from components ``x``, ``y`` (``uint64[3, ...]``,
    or ``uint32`` on :math:`\mathbb{Z}_{2^{32}}`: the ring is the words' dtype).

    Args:
        key: PRNG key: the call's counter of the three pairwise keys (the zero-sharing).
        x, y: ``uint64[3, *shape]`` replicated components.
        op: the bilinear map on ring arrays, e.g. ``jnp.multiply`` or ``jaxmpc.core.gemm.matmul``.
        name: label for cost accounting.
        mode: how the simulator computes the output (static):

            - ``"faithful"``: every :math:`z_i` as written (6 evaluations of ``op``);
            - ``"protocol"`` (default): bit-identical with 4 evaluations and one of ``op_opened``:
              :math:`z_0, z_1` as written, and :math:`z_2 = x \circ y - z_0 - z_1`, equal to the
              faithful one because the :math:`z_i` of a correct protocol sum to :math:`x \circ y`;
            - ``"ideal"``: :math:`x \circ y` freshly shared (1 evaluation): the same distribution
              (uniform components of the exact product), not the same bits.
        op_opened: optionally, a bit-identical but faster ``op`` for the product of the (small,
            fixed-point) values themselves, e.g. :func:`jaxmpc.core.gemm.matmul_small`.
        transcript: if a list, the messages :math:`z_0, z_1, z_2` (party :math:`i`'s to party
            :math:`i-1`) are appended as one ``uint64[3, ...]`` array.
        r: the streams of the zero-sharing (:func:`jaxmpc.protocols.replicated.prf.streams`) when
            the caller drew them; ``key`` is then unused.
    Returns:
        ``uint64[3, *op_shape]`` components of the ring product.

    Protocol:
        1. Each party :math:`i` computes
           :math:`z_i = x_i \circ (y_i + y_{i+1}) + x_{i+1} \circ y_i + \alpha_i`, with
           :math:`\alpha_i = r_i - r_{i+1}` from its two keys.
        2. Party :math:`i` sends :math:`z_i` to party :math:`i-1` (one round); party :math:`i` now
           holds :math:`(z_i, z_{i+1})`.

    Cost (every mode models the protocol; ABY3 Sec. 2.2 / 5, Falcon Sec. 3.1): 1 round; each party
    sends :math:`w|x \circ y|` bytes (one ring element of :math:`w = \ell/8` bytes per output
    element, to one neighbour).
    """
    check_mode(mode)
    shape = _out_shape(op, x, y)
    if r is None:
        (r,) = prf.streams(key, shape, dtype=x.dtype)
    accounting.record(name, n_parties=prf.N_PARTIES, rounds=1, elements_opened=int(jnp.size(r[0])),
                      bits_per_element=ring.bits_of(x), recipients=1)
    opened = op if op_opened is None else op_opened
    if mode == "ideal":
        return prf.random_sharing(r, opened(ring.party_sum(x), ring.party_sum(y)))
    alpha = prf.zero_sharing(r)
    if mode == "faithful":
        xn, yn = prf.next_(x), prf.next_(y)
        z = jax.vmap(op)(x, y + yn) + jax.vmap(op)(xn, y) + alpha
    else:
        z0 = op(x[0], y[0] + y[1]) + op(x[1], y[0]) + alpha[0]
        z1 = op(x[1], y[1] + y[2]) + op(x[2], y[1]) + alpha[1]
        z2 = opened(ring.party_sum(x), ring.party_sum(y)) - z0 - z1
        z = jnp.stack([z0, z1, z2])
    if transcript is not None:
        transcript.append(z)
    return z


def product(key, x: Shared, y: Shared, op, name: str, truncation: str, mode: str,
            op_opened=None) -> Shared:
    """The generic bilinear product of two replicated shared values: :func:`reshare_product` on
    ``op``, then truncation back to the operands' scale when both are fixed point (the family's
    ``product`` kernel, which :func:`jaxmpc.mul`, :func:`jaxmpc.matmul` and the convolutions reach
    through :func:`jaxmpc.protocols.arith.bilinear`).

    Cost: :func:`reshare_product`'s (1 round, :math:`8|z|` bytes per party), plus the truncation's
    (:func:`jaxmpc.protocols.replicated.truncation.truncate_shares`: 1 round, :math:`8|z|` bytes
    sent by one party).
    """
    check_method(truncation, x.n_parties)
    check_mode(mode)
    if x.fxp is not None and y.fxp is not None:
        fxp = common_fxp(x, y, name)
        k_mul, k_trunc = jax.random.split(key)
        z = reshare_product(k_mul, x.shares, y.shares, op, name, mode, op_opened)
        diagnostics.observe_product(name, x.shares, y.shares, z, op)  # nothing unless collecting
        with diagnostics.label(name):
            return x.like(truncate_shares(k_trunc, z, fxp.ring_scale, truncation), fxp)
    fxp = x.fxp if x.fxp is not None else y.fxp  # a plain integer (e.g. a 0/1 bit) scales nothing
    z = reshare_product(key, x.shares, y.shares, op, name, mode, op_opened)
    diagnostics.observe_product(name, x.shares, y.shares, z, op)
    return x.like(z, fxp)


def square_sum(key, x: Shared, divisor: int, truncation: str) -> Shared:
    r"""Sum of squares of a replicated shared value divided by a public integer:
    :math:`z \approx \sum x^2 / (s D)` (the family's ``square_sum`` kernel).

    Protocol:
        1. Party :math:`i` computes :math:`z_i = \sum (x_i^2 + 2 x_i x_{i+1}) + \alpha_i` (a scalar:
           the cross terms of :math:`x \cdot x` grouped, as in :func:`reshare_product`).
        2. Party :math:`i` sends :math:`z_i` to party :math:`i-1` (one round, one element).
        3. One truncation of the scalar by :math:`s D`.

    Cost: 1 round and 8 bytes per party, plus the truncation of one element (1 round, 8 bytes sent
    by one party).
    """
    check_method(truncation, x.n_parties)
    k_mul, k_trunc = jax.random.split(key)
    flat = x.shares.reshape(prf.N_PARTIES, -1)
    words = flat.dtype
    (r,) = prf.streams(k_mul, (), dtype=words)
    accounting.record("square_sum", n_parties=prf.N_PARTIES, rounds=1, elements_opened=1,
                      bits_per_element=ring.bits_of(flat), recipients=1)
    nxt = prf.next_(flat)
    z = jnp.sum(flat * (flat + ring.word(2, words) * nxt), axis=1, dtype=words) + prf.zero_sharing(r)
    diagnostics.observe_product("square_sum", flat, flat, z, lambda a, b: jnp.sum(a * b))
    divisor_ring = x.fxp.ring_scale * jnp.asarray(divisor, words)
    with diagnostics.label("square_sum"):
        return x.like(truncate_shares(k_trunc, z, divisor_ring, truncation))
