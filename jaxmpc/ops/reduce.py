r"""Reductions, rounding and polynomials of shared fixed-point values, written once on the products
and truncations of :mod:`jaxmpc.protocols.arith`.

- :func:`mean` and :func:`var` over axes (``jnp.mean`` / ``jnp.var``, population variance);
- :func:`floor` and :func:`ceil` (exact, by ``"exact"`` truncation, where the family offers it);
- :func:`outer` (``jnp.outer``) and :func:`polyval` (``jnp.polyval`` with public coefficients);
- :func:`power` (``jnp.power`` with a static integer exponent) and :func:`norm` (the L2 norm);
- :func:`dropout` with a public mask from a shared seed (its twin :func:`dropout_plain`).

Each has its plaintext twin in JAX itself (the function named above), which the tests use as oracle.
"""
from __future__ import annotations

import math

import jax
import numpy as np

from ..core import ring
from ..core.keys import check_key
from ..errors import InputTypeError
from ..protocols import arith
from ..protocols.shared import Shared, concatenate


def _fixed_point(x, fname: str) -> None:
    if not isinstance(x, Shared) or x.fxp is None:
        got = type(x).__name__ if not isinstance(x, Shared) else "a plain-integer Shared"
        raise InputTypeError(f"{fname}: x must be a fixed-point jaxmpc.Shared, got {got}. Share it with "
                             "jaxmpc.share(key, x, jaxmpc.FixedPoint(...)).")


def _count(x: Shared, axis) -> int:
    axes = range(x.ndim) if axis is None else ((axis,) if isinstance(axis, int) else tuple(axis))
    x.sum(axis)  # checks the axes (ShareMismatchError naming the valid range)
    return math.prod(x.shape[a] for a in axes) if x.ndim else 1


def mean(key, x: Shared, axis=None, keepdims: bool = False, *, truncation: str = "default") -> Shared:
    r"""Mean over ``axis`` (all axes by default): a local sum, then one division by the count.

    Error: that of one truncation (:func:`jaxmpc.div_public`): within 1 unit of :math:`x`'s
    encoding with ``"dealer"``.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> from jaxmpc.ops import reduce
        >>> x = jaxmpc.share(jax.random.key(0), [[1.0, 2.0], [3.0, 6.0]], jaxmpc.FixedPoint(10, 3))
        >>> jaxmpc.reveal(reduce.mean(jax.random.key(1), x, axis=0)).tolist()
        [2.0, 4.0]

    Cost: one truncation of the output's elements (dealer: 1 round).
    """
    check_key(key)
    _fixed_point(x, "mean")
    count = _count(x, axis)
    s = x.sum(axis, keepdims=keepdims)
    return s if count == 1 else arith.div_public(key, s, count, truncation=truncation)


def var(key, x: Shared, axis=None, keepdims: bool = False, *, truncation: str = "default") -> Shared:
    r"""Population variance over ``axis``: :math:`\overline{(x - \bar x)^2}` (two passes, so that
    no :math:`\overline{x^2} - \bar x^2` cancellation loses the fixed point's few digits).

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> from jaxmpc.ops import reduce
        >>> x = jaxmpc.share(jax.random.key(0), [1.0, 2.0, 3.0, 6.0], jaxmpc.FixedPoint(10, 3))
        >>> float(jaxmpc.reveal(reduce.var(jax.random.key(1), x)).round(2))
        3.5

    Cost: :func:`mean` twice and one elementwise product of :math:`|x|` elements (Beaver and its
    truncation): 4 rounds with ``"dealer"``.
    """
    check_key(key)
    _fixed_point(x, "var")
    k_mean, k_mul, k_out = jax.random.split(key, 3)
    d = x - mean(k_mean, x, axis, keepdims=True, truncation=truncation)
    return mean(k_out, arith.mul(k_mul, d, d, truncation=truncation), axis, keepdims, truncation=truncation)


def floor(key, x: Shared) -> Shared:
    r""":math:`\lfloor x \rfloor`, exact: ``"exact"`` truncation of :math:`x - \lfloor s/2 \rfloor`
    by the scale :math:`s` gives :math:`\lfloor x_{enc}/s \rfloor`, which times :math:`s` is the
    encoding of :math:`\lfloor x \rfloor`.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> from jaxmpc.ops import reduce
        >>> x = jaxmpc.share(jax.random.key(0), [-1.5, -1.0, 0.25, 2.999], jaxmpc.FixedPoint(10, 3))
        >>> jaxmpc.reveal(reduce.floor(jax.random.key(1), x)).tolist()
        [-2.0, -1.0, 0.0, 2.0]

    Cost: one ``"exact"`` truncation (the dealer protocol and one msb).
    """
    check_key(key)
    _fixed_point(x, "floor")
    s = x.fxp.ring_scale
    shifted = x.like(ring.add_to_party0(x.shares, -(s >> ring.word(1, s))))
    q = arith.truncate(key, shifted, s, truncation="exact")
    return x.like(q.shares * s)


def ceil(key, x: Shared) -> Shared:
    r""":math:`\lceil x \rceil = -\lfloor -x \rfloor`, exact. Cost: as :func:`floor`.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> from jaxmpc.ops import reduce
        >>> x = jaxmpc.share(jax.random.key(0), [-1.5, -1.0, 0.25, 2.001], jaxmpc.FixedPoint(10, 3))
        >>> jaxmpc.reveal(reduce.ceil(jax.random.key(1), x)).tolist()
        [-1.0, -1.0, 1.0, 3.0]
    """
    return -floor(key, -x)


def outer(key, x: Shared, y: Shared, *, truncation: str = "default") -> Shared:
    r"""Outer product of two vectors (any shapes are flattened, as ``jnp.outer``): one Beaver product
    of the broadcast ``(|x|, 1) * (1, |y|)`` (it opens :math:`|x| + |y|` masked elements, not
    :math:`2|x||y|`) and its truncation.

    Cost: :func:`jaxmpc.mul` of the broadcast operands: 1 round and :math:`8(n-1)(|x| + |y|)`
    bytes per party, plus the truncation of :math:`|x||y|` elements.
    """
    check_key(key)
    arith.check_operands(key, x, y, "outer")
    return arith.mul(key, x.reshape(x.size, 1), y.reshape(1, y.size), truncation=truncation)


def polyval(key, coeffs, x: Shared, *, truncation: str = "default") -> Shared:
    r"""Polynomial with public coefficients, highest degree first (``jnp.polyval``):
    :math:`p(x) = \sum_{i=0}^{k} c_{k-i} x^i`.

    Protocol: the powers :math:`x^1 .. x^k` by doubling (round :math:`j` multiplies the powers
    :math:`x^1 .. x^{2^j}` by :math:`x^{2^j}`, all in one product), then one :func:`jaxmpc.mul_public`
    of the stacked powers by their coefficients and a local sum.

    Error: each power carries the truncation errors of its products, amplified by the later
    factors; the result is within a few units times :math:`\sum_i |c_i| i |x|^{i-1}` of the
    polynomial of the encoded :math:`x`.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> from jaxmpc.ops import reduce
        >>> x = jaxmpc.share(jax.random.key(0), [-1.0, 0.5, 2.0], jaxmpc.FixedPoint(2, 16))
        >>> jaxmpc.reveal(reduce.polyval(jax.random.key(1), [1.0, -2.0, 0.5], x)).round(3).tolist()
        [3.5, -0.25, 0.5]

    Cost: :math:`\lceil \log_2 k \rceil` products (each 2 rounds with ``"dealer"``) and one
    truncation of :math:`k|x|` elements.
    """
    check_key(key)
    _fixed_point(x, "polyval")
    c = np.asarray(coeffs, np.float64)
    if c.ndim != 1 or c.size == 0 or not np.all(np.isfinite(c)):
        raise InputTypeError(f"polyval: coeffs must be a non-empty 1-d sequence of finite reals, highest "
                             f"degree first (as jnp.polyval), got {coeffs!r}.")
    degree = c.size - 1
    if degree == 0:
        return x * 0 + float(c[0])
    rounds = max(1, math.ceil(math.log2(degree))) if degree > 1 else 0
    keys = jax.random.split(key, rounds + 1)
    powers = x.reshape((1,) + x.shape)  # x^1
    for j in range(rounds):
        top = powers[powers.shape[0] - 1]  # x^(2^j)
        more = arith.mul(keys[j], powers, top.reshape((1,) + x.shape), truncation=truncation)
        powers = concatenate([powers, more], axis=0)
    powers = powers[:degree]  # x^1 .. x^degree
    weights = c[::-1][1:].reshape((degree,) + (1,) * x.ndim)  # c for x^1 .. x^degree
    terms = arith.mul_public(keys[-1], powers, weights, truncation=truncation)
    return terms.sum(0) + float(c[-1])


def power(key, x: Shared, k: int, *, truncation: str = "default") -> Shared:
    r"""Integer power :math:`x^k` (``jnp.power`` with a static int :math:`k \ge 0`) by repeated
    squaring: the squares :math:`x^{2^j}` and the running product of those in :math:`k`'s binary
    expansion, each one :func:`jaxmpc.mul`.

    Headroom: every intermediate :math:`|x|^{i}` (:math:`i \le k`) must satisfy
    :math:`|x|^i s^2 < 2^{62}`. Error: each product's truncation, amplified by the later factors:
    about :math:`k |x|^{k-1}` units of :math:`1/s`.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> from jaxmpc.ops import reduce
        >>> x = jaxmpc.share(jax.random.key(0), [-1.5, 0.5, 2.0], jaxmpc.FixedPoint(2, 16))
        >>> (jaxmpc.reveal(reduce.power(jax.random.key(1), x, 5)) * 1000).round().astype(int).tolist()
        [-7594, 31, 32000]

    Cost: :math:`\lfloor\log_2 k\rfloor` squarings and :math:`\mathrm{popcount}(k) - 1` products
    (2 rounds each with ``"dealer"``).
    """
    check_key(key)
    _fixed_point(x, "power")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise InputTypeError(f"power: k must be a Python int >= 0 (it is static: it sets the number of "
                             f"products), got {k!r}; a fractional power of a positive x is "
                             "jaxmpc.exp(p * jaxmpc.log(x)).")
    k = int(k)
    if k == 0:
        return x * 0 + 1.0
    keys = iter(jax.random.split(key, 2 * max(1, k.bit_length())))
    result, square = None, x
    while True:
        if k & 1:
            result = square if result is None else arith.mul(next(keys), result, square, truncation=truncation)
        k >>= 1
        if not k:
            return result
        square = arith.mul(next(keys), square, square, truncation=truncation)


def norm(key, x: Shared, axis=None, keepdims: bool = False, *, truncation: str = "default") -> Shared:
    r"""Euclidean norm :math:`\sqrt{\sum x^2}` over ``axis`` (all axes by default, as
    ``jnp.sqrt(jnp.sum(x ** 2, axis))``): over all axes one Beaver square sum
    (:func:`jaxmpc.square_sum`, one truncation), over some one :func:`jaxmpc.mul` of :math:`x` by
    itself and a local sum; then :func:`jaxmpc.sqrt` (wide).

    Domain: :math:`\sum x^2` in :func:`jaxmpc.sqrt`'s domain (:math:`[2^{-12}, 2^{20}]`). Error: that of
    :func:`jaxmpc.sqrt` (relative :math:`10^{-4}`) plus one truncation of the sum.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> from jaxmpc.ops import reduce
        >>> x = jaxmpc.share(jax.random.key(0), [[3.0, 4.0], [1.0, 0.0]], jaxmpc.FixedPoint(2, 16))
        >>> jaxmpc.reveal(reduce.norm(jax.random.key(1), x, axis=1)).round(3).tolist()
        [5.0, 1.0]

    Cost: the square sum or product (2 rounds with ``"dealer"``) and :func:`jaxmpc.sqrt`.
    """
    from .approx import sqrt
    check_key(key)
    _fixed_point(x, "norm")
    _count(x, axis)
    k_sq, k_sqrt = jax.random.split(key)
    if axis is None and not keepdims:
        squares = arith.square_sum(k_sq, x, truncation=truncation)
    else:
        squares = arith.mul(k_sq, x, x, truncation=truncation).sum(axis, keepdims=keepdims)
    return sqrt(k_sqrt, squares, truncation=truncation)


def dropout_mask(seed, p: float, shape) -> jax.Array:
    """The public 0/1 keep mask of :func:`dropout` (int64, 1 with probability :math:`1 - p`)."""
    return jax.random.bernoulli(seed, 1.0 - p, tuple(shape)).astype(np.int64)


def dropout(key, x: Shared, p: float, seed, *, truncation: str = "default") -> tuple[Shared, jax.Array]:
    r"""Inverted dropout :math:`y = m \odot x / (1 - p)` with a **public** mask :math:`m`.

    The mask is drawn from ``seed``, a key every party holds (so each computes the same :math:`m`):
    which elements are dropped is public, as in CrypTen's dropout, whose mask is also known to all
    parties; the values stay secret. It is not a secret-mask dropout. The mask is returned for the
    backward, :math:`dx = m \odot dy / (1 - p)` (:func:`jaxmpc.mul_public` of ``dy * m``).

    Args:
        key: PRNG key (the truncation's).
        x: fixed-point :class:`Shared`.
        p: the drop probability, a Python float in [0, 1).
        seed: the shared, public PRNG key the mask is drawn from.
        truncation: a truncation option (:func:`jaxmpc.mul`).
    Returns:
        ``(y, mask)``: a :class:`Shared` like ``x`` and the int64 mask.

    Cost: one truncation (:func:`jaxmpc.mul_public`, 1 round); the mask product is local.
    """
    check_key(key)
    check_key(seed)
    _fixed_point(x, "dropout")
    if isinstance(p, bool) or not isinstance(p, (float, int)) or not 0.0 <= p < 1.0:
        raise InputTypeError(f"dropout: p must be a Python float in [0, 1), got {p!r}.")
    mask = dropout_mask(seed, float(p), x.shape)
    kept = x * mask
    return (kept if p == 0 else arith.mul_public(key, kept, 1.0 / (1.0 - p), truncation=truncation)), mask


def dropout_plain(x, p: float, seed):
    """Plaintext twin of :func:`dropout` (same mask from the same seed)."""
    x = jax.numpy.asarray(x, jax.numpy.float64)
    return x * dropout_mask(seed, float(p), x.shape).astype(x.dtype) / (1.0 - p)
