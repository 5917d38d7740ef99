r"""Correlated randomness without a dealer: the three pairwise PRF keys of replicated sharing.

Replicated sharing (Araki, Furukawa, Lindell, Nof & Ohara, CCS 2016; ABY3, Mohassel & Rindal,
CCS 2018, Sec. 2.2): :math:`x = x_0 + x_1 + x_2` over :math:`\mathbb{Z}_{2^{\ell}}` (:math:`\ell` = 64 or 32: the
words' dtype, :mod:`jaxmpc.core.ring`) and party
:math:`i` holds the components :math:`(x_i, x_{i+1})` (indices mod 3), so component :math:`j` is
held by parties :math:`j` and :math:`j - 1`. In the setup of ABY3 (Sec. 2.2) party :math:`i`
holds the PRF keys :math:`k_i` and :math:`k_{i+1}`: key :math:`k_j` is known to exactly the holders
of component :math:`j`. With :math:`F` a PRF and a counter shared by the three parties:

- a random sharing of a uniform value: component :math:`j` is :math:`r_j = F_{k_j}(\mathit{ctr})`,
  which both its holders compute (no communication);
- a zero-sharing :math:`\alpha_i = r_i - r_{i+1}` (party :math:`i` knows both), with
  :math:`\alpha_0 + \alpha_1 + \alpha_2 = 0`; over bits :math:`\alpha_i = r_i \oplus r_{i+1}`. To
  party :math:`i`, :math:`\alpha_{i+1} = r_{i+1} - r_{i+2}` is uniform: it lacks :math:`k_{i+2}`.

In the simulator the counter is the call's key: :func:`streams` draws row :math:`j` from the stream
of :math:`k_j`, one of the keys that :func:`jaxmpc.core.ring.draw` derives one-way from the call's
key (:mod:`jaxmpc.core.keys`), so a row tells nothing about another row or about the key. A
deployment would agree the keys once per run (each party sends one seed to a neighbour) and evaluate
:math:`F_{k_j}` at a counter that every call advances; a fresh key per call is that counter here.
A reused zero-sharing (the same key for two calls, or one word for two elements) makes a received
share's mask cancel against another one: ``tests/test_replicated.py`` checks that a party's view
then depends on the secret.

Cost: nothing is sent (the keys' one-time setup is not counted).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ...core import ring

N_PARTIES = 3


def streams(key, *shapes, dtype=ring.DTYPE) -> list[jax.Array]:
    """``dtype[3, *shape]`` for each shape (words of the ring, ``uint64`` by default): row :math:`j`
    from the pairwise key :math:`k_j` (known to the holders of component :math:`j`, parties
    :math:`j` and :math:`j-1`); one draw."""
    return ring.draw(key, N_PARTIES, *[(N_PARTIES, tuple(s)) for s in shapes], dtype=dtype)


def next_(v: jax.Array) -> jax.Array:
    """Row :math:`i` of the result is row :math:`i + 1 \\bmod 3` of ``v`` (``[3, ...]``): the
    other component party :math:`i` holds, or the key it shares with party :math:`i+1`."""
    return jnp.concatenate([v[1:], v[:1]], axis=0)


def zero_sharing(r: jax.Array) -> jax.Array:
    r"""The zero-sharing :math:`\alpha_i = r_i - r_{i+1}` of the streams ``r`` (``[3, ...]`` ring words)."""
    return r - next_(r)


def xor_zero_sharing(r: jax.Array) -> jax.Array:
    r"""The XOR zero-sharing :math:`\alpha_i = r_i \oplus r_{i+1}` of the streams ``r``."""
    return r ^ next_(r)


def random_sharing(r: jax.Array, v: jax.Array) -> jax.Array:
    """Components of the ring value ``v`` with components 0 and 1 the streams' rows 0 and 1
    (uniform) and component 2 the correction: a fresh sharing, as the ideal functionality outputs."""
    return ring.shares_from_mask(v, r[:2])


def stream(key, j: int, shape, dtype=ring.DTYPE) -> jax.Array:
    """Row ``j`` alone of :func:`streams` ``(key, shape, dtype=dtype)`` (the same words): the
    randomness that the two holders of component :math:`j` derive from :math:`k_j`, without drawing
    the others."""
    shape = tuple(shape)
    size = 1
    for s in shape:
        size *= int(s)
    if not size:
        return jnp.zeros(shape, dtype)
    return ring.random(jax.random.split(key, N_PARTIES + 1)[j], (size,), dtype).reshape(shape)
