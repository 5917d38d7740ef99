r"""Nonlinear functions on shared fixed-point values, by iterations of multiplications.

Each function takes ``(key, x, ...)`` like :func:`jaxmpc.relu` and has a plaintext twin
(``exp_plain``, ...) that computes *the same approximation* in float64, so a test can separate the
approximation error (twin vs exact float64) from the MPC error (shared result vs twin: truncation
rounding, in units of :math:`1/s`).

Iteration counts and orders are Python ints: they change the program (the number of rounds), so they
are static; sweep them per compile. Precision is array data and can be vmapped
(``experiments/approx.py`` does).

The errors in the docstrings below were measured with ``experiments/approx.py`` (base 2, 16 fractional bits, 2 parties,
dealer truncation) against float64 over the stated domain: "approx" is twin vs exact, "MPC" is
shared vs twin. Rounds assume dealer truncation (each :func:`jaxmpc.mul` is 2 rounds: Beaver +
truncation; each :func:`jaxmpc.mul_public` / :func:`jaxmpc.div_public` is 1); :math:`M` denotes
the rounds of :func:`jaxmpc.msb` (:math:`L(n) + 8`). Round counts are those
:func:`jaxmpc.cost` reports, which adds up independent steps sequentially (an upper bound).
Tests cover dealer truncation everywhere and local truncation for :func:`exp`.

Headroom: every product needs :math:`|xy| s^2 < 2^{62}`; with :math:`s = 2^{16}` values up to
:math:`2^{15}` may be squared, so :func:`exp` is valid for :math:`x < 10` (its square stays there).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..trace import accounting
from ..protocols.arith import div_public, mul, mul_public
from .compare import msb, tournament
from ..errors import InputTypeError, ProtocolError, ShareMismatchError
from ..core.keys import check_key
from ..protocols.shared import Shared, concatenate

__all__ = ["exp", "reciprocal", "divide", "sigmoid", "tanh", "rsqrt", "log", "softmax", "tree_max",
           "exp_plain", "reciprocal_plain", "divide_plain", "sigmoid_plain", "tanh_plain",
           "rsqrt_plain", "log_plain", "softmax_plain"]


def _check(key, x, fname: str, name: str = "x") -> None:
    check_key(key)
    if not isinstance(x, Shared) or x.fxp is None:
        raise InputTypeError(
            f"{fname}: {name} must be a fixed-point jaxmpc.Shared (share it with jaxmpc.share(key, {name}, "
            f"jaxmpc.FixedPoint(2, 16))), got {type(x).__name__}"
            + (" with fxp=None (a plain-integer sharing)" if isinstance(x, Shared) else "") + "."
        )


def _check_iter(n, name: str, fname: str, low: int = 0) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < low:
        raise InputTypeError(
            f"{fname}: {name} must be a Python int >= {low} (it is static: it changes the number of "
            f"rounds), got {n!r}."
        )


EXP_MAX_ITERATIONS = 61  # exp divides by 2^n, and jaxmpc.div_public takes divisors below 2^62


def _check_exp_iter(n, name: str, fname: str) -> None:
    """``n`` is a valid iteration count of :func:`exp`: a Python int in 0..EXP_MAX_ITERATIONS."""
    _check_iter(n, name, fname)
    if n > EXP_MAX_ITERATIONS:
        raise ProtocolError(
            f"{fname}: {name} must be in 0..{EXP_MAX_ITERATIONS}, got {n}: exp starts from 1 + x/2^n, "
            "a division by 2^n (jaxmpc.div_public), whose divisor must lie below 2^62 (the truncation's "
            "range). Useful counts are much lower: the rounding of x/2^n is amplified 2^n times, a "
            "relative error of about 2^n/s at scale s, so keep 2^n well below s (the default is 8)."
        )


def _check_axis(x: Shared, axis, fname: str) -> int:
    """``axis`` of ``x`` as a non-negative int; the errors name ``x``'s shape without the party axis."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise InputTypeError(f"{fname}: axis must be a Python int, got {axis!r}.")
    if x.ndim == 0:
        raise ShareMismatchError(f"{fname}: x must have an axis to reduce over, got a 0-d shared value "
                                 "(shape ()); give it one with x.reshape(1).")
    if not -x.ndim <= axis < x.ndim:
        raise ShareMismatchError(f"{fname}: axis must be in {-x.ndim}..{x.ndim - 1} for a shared value of "
                                 f"shape {x.shape} (the party axis is not counted), got {axis}.")
    return int(axis) % x.ndim


# ---- exp ----------------------------------------------------------------------------------------
def exp(key, x: Shared, *, iterations: int = 8, truncation: str = "dealer") -> Shared:
    r"""Exponential by the limit :math:`e^x \approx (1 + x/2^n)^{2^n}`, :math:`n` = ``iterations``.

    Domain: :math:`-2^n < x < 10` (for :math:`x \le -2^n` the base is :math:`\le 0` and the
    result is garbage; above 10 the last squaring leaves the ring's headroom at 16 fractional bits).
    Approximation error (relative, :math:`\approx x^2 / 2^{n+1}`), measured for :math:`n = 8` on
    :math:`[-8, 4]`: 3 % at :math:`x = 4` (1.66 absolute on 54.6), 12 % at :math:`x = -8` (4e-5
    absolute); :math:`n = 10`: 3.1 %. MPC error: the rounding of :math:`x/2^n` (:math:`1/s`) is
    amplified :math:`2^n` times, a relative error up to about :math:`2^n / s` (0.4 % at
    :math:`n = 8, s = 2^{16}`); measured at most 3145/s = 0.048 absolute on :math:`[-8, 4]`.

    Args:
        key: PRNG key.
        x: fixed-point :class:`Shared`, any shape.
        iterations: :math:`n` (static Python int, 0..61: the divisor :math:`2^n` must lie below
            :math:`2^{62}`; accurate only for :math:`2^n` well below the scale).
        truncation: ``"dealer"`` or ``"local"``.
    Returns:
        :class:`Shared` like ``x``.

    Protocol: :math:`y_0 = 1 + x/2^n` (one :func:`jaxmpc.div_public`), then :math:`n` squarings
    :math:`y_{k+1} = y_k^2` (:func:`jaxmpc.mul`).

    Cost: :math:`1 + 2n` rounds (dealer truncation); :math:`n` Beaver products of :math:`|x|`
    elements and :math:`n + 1` truncations.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> from jaxmpc.ops.approx import exp
        >>> k0, k1 = jax.random.split(jaxmpc.key(0))
        >>> x = jaxmpc.share(k0, [0.0, 1.0, -2.0], jaxmpc.FixedPoint(2, 16))
        >>> jaxmpc.reveal(exp(k1, x)).round(1).tolist()
        [1.0, 2.7, 0.1]
    """
    _check(key, x, "exp")
    _check_exp_iter(iterations, "iterations", "exp")
    k_div, k_loop = jax.random.split(key)
    y = div_public(k_div, x, 2 ** iterations, truncation=truncation) + 1.0
    return _loop(lambda k, y: mul(k, y, y, truncation=truncation), k_loop, y, iterations)


def exp_plain(x, iterations: int = 8):
    """Plaintext twin of :func:`exp`: :math:`(1 + x/2^n)^{2^n}` in float64 by :math:`n` squarings."""
    y = 1.0 + jnp.asarray(x, jnp.float64) / 2.0 ** iterations
    for _ in range(iterations):
        y = y * y
    return y


# ---- reciprocal ---------------------------------------------------------------------------------
def _loop(step, key, y, n: int):
    """Apply ``y = step(k, y)`` ``n`` times with a fresh key each time, as one scanned body.

    :func:`jaxmpc.trace.accounting.scan` counts the body's costs ``n`` times; the key is carried and
    split at each step (compile time does not grow with ``n``).
    """
    if n == 0:
        return y

    def body(carry, _):
        y, k = carry
        k, k_step = jax.random.split(k)
        return (step(k_step, y), k), None

    (y, _), _ = accounting.scan(body, (y, key), None, length=n)
    return y


def _newton_reciprocal(key, x: Shared, y: Shared, iterations: int, truncation: str) -> Shared:
    """Newton-Raphson on :math:`1/y - x`: :math:`y \\leftarrow y (2 - x y)`, ``iterations`` times."""
    def step(k, y):
        k1, k2 = jax.random.split(k)
        return mul(k2, y, 2.0 - mul(k1, x, y, truncation=truncation), truncation=truncation)

    return _loop(step, key, y, iterations)


def reciprocal(key, x: Shared, *, iterations: int = 10, exp_iterations: int = 8,
               truncation: str = "dealer") -> Shared:
    r"""Reciprocal :math:`1/x` by Newton-Raphson :math:`y \leftarrow y(2 - xy)` (CrypTen's guess).

    Initial guess :math:`y_0 = 3 e^{0.5 - x} + 0.003` (CrypTen), with :func:`exp`. Newton
    converges when :math:`0 < x y_0 < 2`; the error :math:`e = 1 - xy` squares each iteration.

    Domain: :math:`x \in [0.05, 200]` (positive only; for a negative or signed input use
    its absolute value first). Approximation error (twin vs float64, relative) with
    ``iterations=10``: 6e-15 on the domain (``iterations=8``: 2.8e-4). MPC error: measured at most
    about 120/s absolute (at :math:`x = 0.05`, result 20); relative error against float64 at
    :math:`s = 2^{16}`: 2.1e-3 (at :math:`x = 200`, where :math:`1/x` is 330 units).
    The guess is sensitive to :func:`exp`'s MPC error near :math:`x = 1` (:math:`x y_0 = 1.82`):
    when :math:`2^{n_e}/s` exceeds about 10 % (e.g. ``exp_iterations=10`` at 12 fractional bits)
    Newton diverges and the result is garbage.

    Args:
        key: PRNG key.
        x: fixed-point :class:`Shared`, any shape, values in the domain.
        iterations: Newton iterations (static).
        exp_iterations: ``iterations`` of the :func:`exp` in the initial guess (static).
        truncation: ``"dealer"`` or ``"local"``.
    Returns:
        :class:`Shared` like ``x``.

    Cost: :func:`exp` (:math:`1 + 2n_e` rounds) + 1 (:func:`jaxmpc.mul_public` by 3) +
    :math:`4 \cdot` ``iterations`` rounds (2 products each): :math:`2 + 2n_e + 4I`, 58 rounds for
    the defaults.

    Example:
        >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
        >>> from jaxmpc.ops.approx import reciprocal
        >>> k0, k1 = jax.random.split(jaxmpc.key(0))
        >>> x = jaxmpc.share(k0, [0.5, 4.0, 100.0], jaxmpc.FixedPoint(2, 16))
        >>> jaxmpc.reveal(reciprocal(k1, x)).round(3).tolist()
        [2.0, 0.25, 0.01]
    """
    _check(key, x, "reciprocal")
    _check_iter(iterations, "iterations", "reciprocal")
    _check_exp_iter(exp_iterations, "exp_iterations", "reciprocal")
    keys = jax.random.split(key, 3)
    e = exp(keys[0], 0.5 - x, iterations=exp_iterations, truncation=truncation)
    y = mul_public(keys[1], e, 3.0, truncation=truncation) + 0.003
    return _newton_reciprocal(keys[2], x, y, iterations, truncation)


def _newton_reciprocal_plain(x, y, iterations: int):
    for _ in range(iterations):
        y = y * (2.0 - x * y)
    return y


def reciprocal_plain(x, iterations: int = 10, exp_iterations: int = 8):
    """Plaintext twin of :func:`reciprocal` (same guess, same iterations, float64)."""
    x = jnp.asarray(x, jnp.float64)
    y = 3.0 * exp_plain(0.5 - x, exp_iterations) + 0.003
    return _newton_reciprocal_plain(x, y, iterations)


def divide(key, x: Shared, y: Shared, *, iterations: int = 10, exp_iterations: int = 8,
           truncation: str = "dealer") -> Shared:
    r"""Division by a shared value: :math:`x / y = x \cdot (1/y)` with :func:`reciprocal`.

    Domain: :math:`y` in :func:`reciprocal`'s domain :math:`[0.05, 200]`; :math:`|x/y|` within the
    ring's headroom. Error: :math:`|x|` times the reciprocal's, plus one truncation (1/s).

    Cost: :func:`reciprocal` + 2 rounds (one product).
    """
    _check(key, x, "divide")
    _check(key, y, "divide", "y")
    _check_iter(iterations, "iterations", "divide")
    _check_exp_iter(exp_iterations, "exp_iterations", "divide")
    k_rec, k_mul = jax.random.split(key)
    r = reciprocal(k_rec, y, iterations=iterations, exp_iterations=exp_iterations,
                   truncation=truncation)
    return mul(k_mul, x, r, truncation=truncation)


def divide_plain(x, y, iterations: int = 10, exp_iterations: int = 8):
    """Plaintext twin of :func:`divide`."""
    return jnp.asarray(x, jnp.float64) * reciprocal_plain(y, iterations, exp_iterations)


# ---- sign, sigmoid, tanh ------------------------------------------------------------------------
def sigmoid(key, x: Shared, *, iterations: int = 4, exp_iterations: int = 8,
            truncation: str = "dealer") -> Shared:
    r"""Logistic sigmoid :math:`\sigma(x) = 1/(1 + e^{-x})`, evaluated on :math:`|x|` (sign trick).

    With :math:`b = [x < 0]` and :math:`z = 1 + e^{-|x|} \in (1, 2]`:
    :math:`\sigma(|x|) = 1/z` and :math:`\sigma(x) = \sigma(|x|) + b(1 - 2\sigma(|x|))`. The
    reciprocal of :math:`z \in [1, 2]` starts from the chord :math:`y_0 = (3 - z)/2`
    (:math:`|1 - z y_0| \le 1/8`), so ``iterations=4`` Newton steps leave :math:`8^{-16}`.

    Domain: :math:`|x| < 2^{n_e}` (256 for ``exp_iterations=8``; beyond, :func:`exp` of
    :math:`-|x|` is garbage). Approximation error (twin vs float64, absolute): at most about
    1.1e-3 on :math:`[-16, 16]` (from :func:`exp`'s limit for :math:`|x|` near 2..4), smaller
    for larger ``exp_iterations`` (measured 8.6e-4 for 8, 2.2e-4 for 10, 3.5e-3 for 6). MPC
    error: measured at most 30/s (4.5e-4) at :math:`s = 2^{16}`; total 9.9e-4 against float64.

    Args:
        key: PRNG key.
        x: fixed-point :class:`Shared`, any shape.
        iterations: Newton iterations for :math:`1/z` (static).
        exp_iterations: ``iterations`` of :func:`exp` (static).
        truncation: ``"dealer"`` or ``"local"``.
    Returns:
        :class:`Shared` like ``x``.

    Cost: :math:`b` and :math:`bx` (:math:`M + 1`) + :func:`exp` (:math:`1 + 2n_e`) + 1 (halving) +
    :math:`4 \cdot` ``iterations`` + 1 (select by :math:`b`) rounds: :math:`M + 36` for the
    defaults.
    """
    return sigmoid_parts(key, x, iterations, exp_iterations, truncation)[0]


def sigmoid_parts(key, x: Shared, iterations: int, exp_iterations: int, truncation: str):
    """:func:`sigmoid` and its by-products ``(sigma, b, bx, z)``: :math:`b = [x < 0]`,
    :math:`bx = b \\cdot x` (so :math:`\\max(x, 0) = x - bx`), :math:`z = 1 + e^{-|x|}`."""
    _check(key, x, "sigmoid")
    _check_iter(iterations, "iterations", "sigmoid")
    _check_exp_iter(exp_iterations, "exp_iterations", "sigmoid")
    keys = jax.random.split(key, 6)
    b = msb(keys[0], x)
    bx = mul(keys[5], b, x)
    a = x - bx * 2
    z = exp(keys[1], -a, iterations=exp_iterations, truncation=truncation) + 1.0
    y0 = div_public(keys[2], 3.0 - z, 2, truncation=truncation)
    s = _newton_reciprocal(keys[4], z, y0, iterations, truncation)
    return s + mul(keys[3], b, 1.0 - s * 2), b, bx, z


def sigmoid_plain(x, iterations: int = 4, exp_iterations: int = 8):
    """Plaintext twin of :func:`sigmoid` (same sign trick, guess and iterations, float64)."""
    x = jnp.asarray(x, jnp.float64)
    z = 1.0 + exp_plain(-jnp.abs(x), exp_iterations)
    s = _newton_reciprocal_plain(z, (3.0 - z) / 2.0, iterations)
    return jnp.where(x < 0, 1.0 - s, s)


def tanh(key, x: Shared, *, iterations: int = 4, exp_iterations: int = 8,
         truncation: str = "dealer") -> Shared:
    r"""Hyperbolic tangent :math:`\tanh x = 2\sigma(2x) - 1` (:func:`sigmoid`; the doublings are local).

    Domain: :math:`|x| < 2^{n_e - 1}`. Errors: twice those of :func:`sigmoid` at :math:`2x`
    (measured on :math:`[-8, 8]`: approximation 1.7e-3, MPC at most 49/s, total 1.8e-3 at
    :math:`s = 2^{16}`). Cost: that of :func:`sigmoid`.
    """
    _check(key, x, "tanh")
    return sigmoid(key, x * 2, iterations=iterations, exp_iterations=exp_iterations,
                   truncation=truncation) * 2 - 1.0


def tanh_plain(x, iterations: int = 4, exp_iterations: int = 8):
    """Plaintext twin of :func:`tanh`."""
    return 2.0 * sigmoid_plain(2.0 * jnp.asarray(x, jnp.float64), iterations, exp_iterations) - 1.0


# ---- rsqrt --------------------------------------------------------------------------------------
def rsqrt(key, x: Shared, *, iterations: int = 5, exp_iterations: int = 8,
          truncation: str = "dealer") -> Shared:
    r"""Inverse square root :math:`1/\sqrt{x}` by Newton :math:`y \leftarrow y (3 - x y^2)/2`.

    Initial guess (CrypTen): :math:`y_0 = 2.2\, e^{-(x/2 + 0.2)} + 0.2 - x/1024`. Newton
    converges when :math:`0 < x y_0^2 < 3`, which holds for :math:`x \in (0, 200]`.

    Domain: :math:`x \in [0.1, 100]`. Approximation error (twin vs float64, relative) with
    ``iterations=5``: 2e-9 (4: 3.6e-5, 3: 4.9e-3). MPC error: measured at most 19/s absolute;
    total relative error against float64 5e-4 at :math:`s = 2^{16}` (3e-5 at :math:`2^{20}`).

    Args:
        key: PRNG key.
        x: fixed-point :class:`Shared`, positive values in the domain.
        iterations: Newton iterations (static).
        exp_iterations: ``iterations`` of :func:`exp` in the guess (static).
        truncation: ``"dealer"`` or ``"local"``.
    Returns:
        :class:`Shared` like ``x``.

    Cost: guess: :func:`exp` (:math:`1 + 2n_e`) + 1 (:math:`x/2`, :math:`x/1024` and the
    :math:`2.2` product: :math:`x/2` and :math:`x/1024` share one round, so 2 rounds); per iteration
    3 sequential products (:math:`y^2`, :math:`(x/2) y^2` reusing the guess's :math:`x/2`,
    :math:`y(1.5 - (x/2)y^2)`): :math:`6` rounds. Total :math:`3 + 2n_e + 6` ``iterations``
    rounds (49 for the defaults).
    """
    _check(key, x, "rsqrt")
    _check_iter(iterations, "iterations", "rsqrt")
    _check_exp_iter(exp_iterations, "exp_iterations", "rsqrt")
    keys = jax.random.split(key, 4)
    # x/2 and x/1024 in one truncation call (stacked), one round
    halves = div_public(keys[0], concatenate([x[None] * 512, x[None]], axis=0), 1024,
                        truncation=truncation)
    half, small = halves[0], halves[1]
    e = exp(keys[1], -(half + 0.2), iterations=exp_iterations, truncation=truncation)
    y = mul_public(keys[2], e, 2.2, truncation=truncation) + 0.2 - small
    def step(k, y):
        k = jax.random.split(k, 3)
        y2 = mul(k[0], y, y, truncation=truncation)
        hxy2 = mul(k[1], half, y2, truncation=truncation)  # x y^2 / 2, the halving folded in
        return mul(k[2], y, 1.5 - hxy2, truncation=truncation)

    return _loop(step, keys[3], y, iterations)


def rsqrt_plain(x, iterations: int = 5, exp_iterations: int = 8):
    """Plaintext twin of :func:`rsqrt`."""
    x = jnp.asarray(x, jnp.float64)
    y = 2.2 * exp_plain(-(x / 2.0 + 0.2), exp_iterations) + 0.2 - x / 1024.0
    for _ in range(iterations):
        y = y * (3.0 - x * y * y) / 2.0
    return y


# ---- log ----------------------------------------------------------------------------------------
def log(key, x: Shared, *, iterations: int = 2, order: int = 8, exp_iterations: int = 8,
        truncation: str = "dealer") -> Shared:
    r"""Natural logarithm by Householder iterations on :math:`e^y = x` (CrypTen's method).

    :math:`h = 1 - x e^{-y}`, :math:`y \leftarrow y - \sum_{k=1}^{K} h^k / k` (the series of
    :math:`\log(1 - h)`, :math:`K` = ``order``), from CrypTen's guess
    :math:`y_0 = x/120 - 20 e^{-2x - 1} + 3`.

    Domain: :math:`x \in [1, 100]` by default (the softmax cross-entropy uses it on
    :math:`[1, C]`); the guess is poor below 1 (use more ``iterations``). Approximation error
    (twin vs float64, absolute) with the defaults: measured 0.039 on :math:`[1, 100]`
    (:math:`\approx y^2/2^{n_e+1}`: it is :func:`exp`'s limit error, the fixed point of the
    iteration is the log for the limit's slightly wrong exp; on :math:`[1, 10]` it is below 0.011).
    ``exp_iterations=10`` gives 0.0095 but quadruples the MPC error. MPC error: about
    :math:`2^{n_e}/s` absolute (measured at most 330/s = 5e-3 at :math:`s = 2^{16}`).

    Args:
        key: PRNG key.
        x: fixed-point :class:`Shared`, positive values in the domain.
        iterations: Householder iterations (static).
        order: series order :math:`K` (static, >= 1).
        exp_iterations: ``iterations`` of :func:`exp` (static).
        truncation: ``"dealer"`` or ``"local"``.
    Returns:
        :class:`Shared` like ``x``.

    Cost: guess: 1 (:math:`x/120`) + exp + 1 rounds; per iteration: exp (:math:`1 + 2n_e`) +
    2 (:math:`x e^{-y}`) + :math:`2(K - 1)` (powers :math:`h^2..h^K`, sequential) + 1 (the
    coefficients :math:`1/k`, one truncation). Total
    :math:`(3 + 2n_e) + I(4 + 2n_e + 2(K - 1))` rounds: 87 for the defaults.
    """
    _check(key, x, "log")
    _check_iter(iterations, "iterations", "log")
    _check_exp_iter(exp_iterations, "exp_iterations", "log")
    _check_iter(order, "order", "log", low=1)
    keys = jax.random.split(key, 4)
    lin = div_public(keys[0], x, 120, truncation=truncation)
    e = exp(keys[1], -(x * 2) - 1.0, iterations=exp_iterations, truncation=truncation)
    y = lin - mul_public(keys[2], e, 20.0, truncation=truncation) + 3.0
    coeffs = jnp.asarray([1.0 / k for k in range(1, order + 1)], jnp.float64)
    coeffs = coeffs.reshape((order,) + (1,) * x.ndim)

    def step(key, y):
        k = jax.random.split(key, 4)
        ey = exp(k[0], -y, iterations=exp_iterations, truncation=truncation)
        h = 1.0 - mul(k[1], x, ey, truncation=truncation)
        stacked = h[None]
        if order > 1:  # h^2 .. h^K in one scanned body (outputs stacked on a leading axis)
            def power(carry, _):
                hk, kk = carry
                kk, k_mul = jax.random.split(kk)
                hk = mul(k_mul, hk, h, truncation=truncation)
                return (hk, kk), hk.shares

            _, more = accounting.scan(power, (h, k[2]), None, length=order - 1)
            more = h.like(jnp.moveaxis(more, 0, 1))  # party axis first
            stacked = concatenate([stacked, more], axis=0)
        return y - mul_public(k[3], stacked, coeffs, truncation=truncation).sum(axis=0)

    return _loop(step, keys[3], y, iterations)


def log_plain(x, iterations: int = 2, order: int = 8, exp_iterations: int = 8):
    """Plaintext twin of :func:`log`."""
    x = jnp.asarray(x, jnp.float64)
    y = x / 120.0 - 20.0 * exp_plain(-2.0 * x - 1.0, exp_iterations) + 3.0
    for _ in range(iterations):
        h = 1.0 - x * exp_plain(-y, exp_iterations)
        y = y - sum(h ** k / k for k in range(1, order + 1))
    return y


# ---- softmax ------------------------------------------------------------------------------------
def tree_max(key, x: Shared, axis: int = -1, keepdims: bool = False) -> Shared:
    r"""Maximum over ``axis`` by a knockout tournament (:func:`jaxmpc.ops.compare.tournament`, pairs
    compared at once, no tags carried).

    Cost: :math:`\lceil \log_2 L \rceil (M + 1)` rounds for an axis of length :math:`L`.
    """
    check_key(key)
    if not isinstance(x, Shared):
        raise InputTypeError(f"tree_max: x must be a jaxmpc.Shared, got {type(x).__name__}; share it "
                             "with jaxmpc.share(key, x, fxp).")
    axis = _check_axis(x, axis, "tree_max")
    x = x.transpose([a for a in range(x.ndim) if a != axis] + [axis])  # reduce the last axis
    if x.shape[-1] == 0:
        raise InputTypeError("tree_max: cannot take the maximum over an empty axis.")
    out, _ = tournament(key, x, np.zeros((x.shape[-1], 0), np.int64))
    if keepdims:
        out = out.like(jnp.expand_dims(out.shares, axis + 1))
    return out


def softmax(key, x: Shared, axis: int = -1, *, iterations: int = 10, exp_iterations: int = 8,
            truncation: str = "dealer") -> Shared:
    r"""Softmax :math:`p_i = e^{x_i - m} / \sum_j e^{x_j - m}` with :math:`m = \max_j x_j` (secure).

    Protocol: :math:`m` by :func:`tree_max`; :math:`e = \exp(x - m)` (:func:`exp`, inputs
    :math:`\le 0`); :math:`S = \sum e \in [1, L]` (local); :math:`1/S` by :func:`reciprocal`;
    :math:`p = e / S` (one product).

    Domain: the spread :math:`\max x - \min x` along the axis below :math:`2^{n_e}` (256 for the
    default; a wider spread gives garbage for the smallest entries), axis length :math:`L \le 200`.
    Approximation error (twin vs float64, absolute on :math:`p`): at most 2.4e-3 for rows of 5 with
    spreads 1..32 (from :func:`exp`'s limit); measured 2.7e-3 on rows of 8 logits drawn from
    :math:`N(0, 9)`, MPC at most 60/s, total 2.8e-3 at :math:`s = 2^{16}`. As for
    :func:`reciprocal`, :math:`2^{n_e}/s` must stay below about 10 %.

    Args:
        key: PRNG key.
        x: fixed-point :class:`Shared`; softmax is taken over ``axis`` (a Python int).
        iterations, exp_iterations: those of :func:`reciprocal` and :func:`exp` (static).
        truncation: ``"dealer"`` or ``"local"``.
    Returns:
        :class:`Shared` like ``x``.

    Cost: :math:`\lceil\log_2 L\rceil (M + 1)` + :math:`(1 + 2n_e)` + reciprocal
    (:math:`2 + 2n_e + 4I`) + 2 rounds.
    """
    _check(key, x, "softmax")
    axis = _check_axis(x, axis, "softmax")
    _check_iter(iterations, "iterations", "softmax")
    _check_exp_iter(exp_iterations, "exp_iterations", "softmax")
    k_max, k_exp, k_rec, k_mul = jax.random.split(key, 4)
    m = tree_max(k_max, x, axis, keepdims=True)
    e = exp(k_exp, x - m.broadcast_to(x.shape), iterations=exp_iterations, truncation=truncation)
    s = e.like(jnp.sum(e.shares, axis=axis + 1, keepdims=True, dtype=e.shares.dtype))
    r = reciprocal(k_rec, s, iterations=iterations, exp_iterations=exp_iterations,
                   truncation=truncation)
    return mul(k_mul, e, r, truncation=truncation)


def softmax_plain(x, axis: int = -1, iterations: int = 10, exp_iterations: int = 8):
    """Plaintext twin of :func:`softmax` (exact max, same exp and reciprocal approximations)."""
    x = jnp.asarray(x, jnp.float64)
    e = exp_plain(x - jnp.max(x, axis=axis, keepdims=True), exp_iterations)
    s = jnp.sum(e, axis=axis, keepdims=True)
    return e * reciprocal_plain(s, iterations, exp_iterations)
