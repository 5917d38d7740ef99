r"""Elementwise and row-wise approximations as layers, with gradients derived by hand.

Each constructor returns a :class:`~jaxmpc.nn.layers.Layer` (no parameters) whose forward is the
approximation of :mod:`jaxmpc.ops.approx` (or :func:`jaxmpc.abs`) and whose backward is the
derivative written with the public API, reusing the forward's output wherever the derivative is a
function of it (CrypTen's ``gradients.py`` does the same):

- :func:`Exp`: :math:`y = e^x`, :math:`dx = y \odot dy`;
- :func:`Reciprocal`: :math:`y = 1/x`, :math:`dx = -y \odot (y \odot dy)`;
- :func:`Sigmoid`: :math:`y = \sigma(x)`, :math:`dx = y(1 - y) \odot dy`;
- :func:`Tanh`: :math:`y = \tanh x`, :math:`dx = (1 - y^2) \odot dy`;
- :func:`Log`: :math:`y = \log x`, :math:`dx = dy / x` (:func:`jaxmpc.divide`);
- :func:`Sqrt`: :math:`y = \sqrt x`, :math:`dx = dy / (2y)` (:func:`jaxmpc.divide`);
- :func:`Abs`: :math:`y = s x` with :math:`s = 1 - 2[x < 0]`, :math:`dx = s \odot dy` (no truncation);
- :func:`Softmax`: :math:`p = \mathrm{softmax}(x)`, :math:`dx = p \odot (dy - \sum_{axis} p \odot dy)`;
- :func:`LogSoftmax`: :math:`\ell = \log \mathrm{softmax}(x)`, :math:`dx = dy - e^{\ell} \sum_{axis} dy`.

The residual is the forward's output (the input for :func:`Log`, the sign for :func:`Abs`). The
plaintext twin ``plain`` is the approximation's own twin (``exp_plain``, ...), so ``jax.vjp`` of it
is the oracle the tests hold ``backward`` to; the gap is the approximation's (the twin's derivative
is that of the approximation, the backward uses the exact derivative's formula) plus the MPC
rounding. Keyword options (``iterations``, ``exp_iterations``, ...) go to the approximation and to
its twin alike; the backward's :func:`jaxmpc.divide` uses its wide defaults.

Cost of a backward, with dealer truncation (each :func:`jaxmpc.mul` 2 rounds): Exp 2, Reciprocal
4, Sigmoid 4, Tanh 4, Log and Sqrt one :func:`jaxmpc.divide`, Abs 1, Softmax 4, LogSoftmax
:func:`jaxmpc.exp` + 2.

Example:
    >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
    >>> from jaxmpc.nn import activations
    >>> layer = activations.Sigmoid()
    >>> k = jax.random.split(jaxmpc.key(0), 4)
    >>> x = jaxmpc.share(k[0], [-1.0, 0.0, 2.0], jaxmpc.FixedPoint(2, 16))
    >>> y, res = layer.forward(k[1], {}, x)
    >>> _, dx = layer.backward(k[2], {}, res, jaxmpc.share(k[3], [1.0, 1.0, 1.0], x.fxp))
    >>> jaxmpc.reveal(dx).round(2).tolist()  # sigma'(x) = sigma(x)(1 - sigma(x))
    [0.2, 0.25, 0.1]
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ..errors import InputTypeError
from ..ops import approx
from ..ops.compare import msb
from ..protocols.arith import mul
from ..protocols.shared import Shared
from .layers import Layer

__all__ = ["Abs", "Exp", "Log", "LogSoftmax", "Reciprocal", "Sigmoid", "Softmax", "Sqrt", "Tanh"]


def _check_options(name: str, options: dict) -> None:
    """The options are keyword arguments of the approximation ``name`` (checked before any work)."""
    known = approx.defaults(name)
    unknown = sorted(set(options) - set(known) - {"axis"})
    if unknown:
        raise InputTypeError(f"{name} layer: {unknown} are not options of jaxmpc.ops.approx.{name}; its "
                             f"options are {sorted(set(known) - {'truncation'})}.")


def _check_input(x, name: str) -> None:
    if not isinstance(x, Shared) or x.fxp is None:
        raise InputTypeError(f"{name} layer: x must be a fixed-point jaxmpc.Shared, got "
                             f"{type(x).__name__ if not isinstance(x, Shared) else 'plain integers'}.")


def _layer(name: str, forward: Callable, backward: Callable, plain: Callable) -> Layer:
    """A parameter-free layer; ``backward(key, residual, dy)`` returns ``dx``."""
    def fwd(key, params, x):
        _check_input(x, name)
        return forward(key, x)

    def bwd(key, params, residual, dy, need_dx: bool = True):
        return {}, (backward(key, residual, dy) if need_dx else None)

    return Layer(lambda key: {}, fwd, bwd, lambda params, x: plain(x))


def _on_output(name: str, backward: Callable, truncation: str, options: dict) -> Layer:
    """The layer of ``jaxmpc.ops.approx.<name>`` that keeps its output ``y`` as the residual;
    ``backward(key, y, dy)`` returns ``dx``, and the twin is ``approx.<name>_plain``."""
    _check_options(name, options)
    fn, plain = getattr(approx, name), getattr(approx, f"{name}_plain")

    def forward(key, x):
        y = fn(key, x, truncation=truncation, **options)
        return y, y

    return _layer(name, forward, backward, lambda x: plain(x, **options))


def Exp(*, truncation: str = "default", **options) -> Layer:
    r""":func:`jaxmpc.exp` as a layer; backward :math:`dx = e^x \odot dy` (one product of the output)."""
    return _on_output("exp", lambda key, y, dy: mul(key, y, dy, truncation=truncation), truncation, options)


def Reciprocal(*, truncation: str = "default", **options) -> Layer:
    r""":func:`jaxmpc.reciprocal` as a layer; backward :math:`dx = -y (y\, dy)`, :math:`y = 1/x` (two
    products, no second reciprocal)."""
    def backward(key, y, dy):
        k1, k2 = jax.random.split(key)
        return -mul(k2, y, mul(k1, y, dy, truncation=truncation), truncation=truncation)

    return _on_output("reciprocal", backward, truncation, options)


def Sigmoid(*, truncation: str = "default", **options) -> Layer:
    r""":func:`jaxmpc.sigmoid` as a layer; backward :math:`dx = y(1 - y)\, dy` (two products)."""
    def backward(key, y, dy):
        k1, k2 = jax.random.split(key)
        return mul(k2, mul(k1, y, 1.0 - y, truncation=truncation), dy, truncation=truncation)

    return _on_output("sigmoid", backward, truncation, options)


def Tanh(*, truncation: str = "default", **options) -> Layer:
    r""":func:`jaxmpc.tanh` as a layer; backward :math:`dx = (1 - y^2)\, dy` (two products)."""
    def backward(key, y, dy):
        k1, k2 = jax.random.split(key)
        return mul(k2, 1.0 - mul(k1, y, y, truncation=truncation), dy, truncation=truncation)

    return _on_output("tanh", backward, truncation, options)


def Log(*, truncation: str = "default", **options) -> Layer:
    r""":func:`jaxmpc.log` as a layer; backward :math:`dx = dy / x` by :func:`jaxmpc.divide` (wide:
    :math:`x` on :func:`log`'s domain :math:`[1, 100]` is well inside it). The residual is ``x``."""
    _check_options("log", options)

    def forward(key, x):
        return approx.log(key, x, truncation=truncation, **options), x

    return _layer("log", forward, lambda key, x, dy: approx.divide(key, dy, x, truncation=truncation),
                  lambda x: approx.log_plain(x, **options))


def Sqrt(*, truncation: str = "default", **options) -> Layer:
    r""":func:`jaxmpc.sqrt` as a layer; backward :math:`dx = dy / (2y)`, :math:`y = \sqrt x`, by
    :func:`jaxmpc.divide` (wide; :math:`2y` is local). Domain: that of :func:`jaxmpc.sqrt` with
    :math:`2\sqrt x` in :func:`jaxmpc.divide`'s (:math:`x \ge 2^{-26}`)."""
    return _on_output("sqrt", lambda key, y, dy: approx.divide(key, dy, y * 2, truncation=truncation),
                      truncation, options)


def Abs() -> Layer:
    r""":func:`jaxmpc.abs` as a layer: :math:`y = s x` with :math:`s = 1 - 2\,\mathrm{msb}(x)` (1 at
    0, as ``jax.grad(jnp.abs)``), kept as the residual; backward :math:`dx = s \odot dy`, one Beaver
    product by a plain integer (no truncation, no second comparison). Exact."""
    def forward(key, x):
        k_msb, k_mul = jax.random.split(key)
        s = msb(k_msb, x) * -2 + 1
        return mul(k_mul, s, x), s

    return _layer("abs", forward, lambda key, s, dy: mul(key, s, dy), jnp.abs)


def Softmax(axis: int = -1, *, truncation: str = "default", **options) -> Layer:
    r""":func:`jaxmpc.softmax` over ``axis`` as a layer; backward, the Jacobian-vector product
    :math:`dx = p \odot (dy - \sum_{axis} p \odot dy)` (two products, the sum local)."""
    _check_options("softmax", options)

    def forward(key, x):
        p = approx.softmax(key, x, axis, truncation=truncation, **options)
        return p, p

    def backward(key, p, dy):
        k1, k2 = jax.random.split(key)
        a = axis % p.ndim
        inner = mul(k1, p, dy, truncation=truncation).sum(a, keepdims=True).broadcast_to(p.shape)
        return mul(k2, p, dy - inner, truncation=truncation)

    return _layer("softmax", forward, backward, lambda x: approx.softmax_plain(x, axis, **options))


def LogSoftmax(axis: int = -1, *, truncation: str = "default", **options) -> Layer:
    r""":func:`jaxmpc.log_softmax` over ``axis`` as a layer; backward :math:`dx = dy - e^{\ell}
    \sum_{axis} dy` with :math:`e^{\ell} = \mathrm{softmax}(x)` by :func:`jaxmpc.exp` of the output
    (:math:`\ell \le 0`: exp's domain) and one product."""
    _check_options("log_softmax", options)
    exp_iterations = options.get("exp_iterations", approx.defaults("log_softmax")["exp_iterations"])

    def forward(key, x):
        y = approx.log_softmax(key, x, axis, truncation=truncation, **options)
        return y, y

    def backward(key, y, dy):
        k1, k2 = jax.random.split(key)
        a = axis % y.ndim
        p = approx.exp(k1, y, iterations=exp_iterations, truncation=truncation)
        return dy - mul(k2, p, dy.sum(a, keepdims=True).broadcast_to(y.shape), truncation=truncation)

    return _layer("log_softmax", forward, backward, lambda x: approx.log_softmax_plain(x, axis, **options))
