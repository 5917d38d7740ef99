r"""Neural-network layers on shared values, with gradients derived by hand.

A layer is a :class:`Layer` of pure functions:

- ``init(key) -> params``: plaintext (float64) initial parameters, to be shared with
  :func:`jaxmpc.share` (or share given weights, e.g. the seed task's deterministic init);
- ``forward(key, params, x) -> (y, residuals)``: shared output and what the backward needs;
- ``backward(key, params, residuals, dy, need_dx=True) -> (grads, dx)``: shared parameter gradients
  (same structure as ``params``) and the input gradient (``None`` when ``need_dx`` is False);
- ``plain(params, x) -> y``: the plaintext twin, whose ``jax.vjp`` is the oracle for ``backward``.

Example:
    >>> import jax, jaxmpc; jax.config.update("jax_enable_x64", True)
    >>> from jaxmpc import nn
    >>> model = nn.serial(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> k_init, k_share, k_x, k_fwd = jax.random.split(jax.random.key(0), 4)
    >>> fxp = jaxmpc.FixedPoint(2, 16)
    >>> params = jaxmpc.share(k_share, model.init(k_init), fxp)
    >>> x = jaxmpc.share(k_x, [[0.5, -1.0]], fxp)
    >>> y, res = model.forward(k_fwd, params, x)
    >>> y.shape
    (1, 1)
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from ..protocols.arith import matmul, mul
from ..errors import InputTypeError, ShareMismatchError
from ..protocols.shared import Shared


class Layer(NamedTuple):
    """A layer as pure functions (see the module docstring)."""

    init: Callable[[Any], Any]
    forward: Callable[..., tuple[Shared, Any]]
    backward: Callable[..., tuple[Any, Shared | None]]
    plain: Callable[[Any, jax.Array], jax.Array]


def Linear(in_features: int, out_features: int, *, truncation: str = "default",
           mode: str = "protocol") -> Layer:
    r"""Fully connected layer in PyTorch layout: :math:`y = x W^\top + b`.

    Params: ``{"weight": (out, in), "bias": (out,)}``; init :math:`U(-1/\sqrt{in}, 1/\sqrt{in})`
    like PyTorch.

    Forward: one Beaver matmul :math:`x W^\top` (input ``(*B, in)``: every leading axis is a batch
    axis, as in ``torch.nn.Linear``) and a local bias add.
    Backward: :math:`dW = dy^\top x`, :math:`db = \sum_B dy` over all batch axes,
    :math:`dx = dy\, W` (skipped when ``need_dx`` is False, e.g. for the first layer).

    Cost per step: forward 1 matmul ``(B,in)@(in,out)``; backward 2 matmuls (1 without ``dx``), each
    Beaver (1 round) + truncation (1 round with the dealer protocol).

    ``truncation`` and ``mode`` (``"protocol"``, ``"faithful"``, ``"ideal"``) are passed to
    :func:`jaxmpc.matmul`.
    """
    opts = {"truncation": truncation, "mode": mode}

    def init(key):
        k_w, k_b = jax.random.split(key)
        bound = 1.0 / math.sqrt(in_features)
        return {"weight": jax.random.uniform(k_w, (out_features, in_features), jnp.float64, -bound, bound),
                "bias": jax.random.uniform(k_b, (out_features,), jnp.float64, -bound, bound)}

    def check(params):
        if not isinstance(params, dict) or not {"weight", "bias"} <= set(params):
            raise InputTypeError(
                f"Linear({in_features}, {out_features}): params must be a dict with 'weight' "
                f"({out_features}, {in_features}) and 'bias' ({out_features},), as made by init and "
                f"then jaxmpc.share, got {type(params).__name__}"
                + (f" with keys {sorted(params)}." if isinstance(params, dict) else "."))
        for name, want in (("weight", (out_features, in_features)), ("bias", (out_features,))):
            p = params[name]
            got = p.shape if isinstance(p, Shared) else tuple(jnp.shape(p))
            if got != want:
                raise ShareMismatchError(f"Linear({in_features}, {out_features}): params['{name}'] "
                                         f"must have shape {want}, got {got}.")

    def forward(key, params, x):
        check(params)
        y = matmul(key, x, params["weight"].T, **opts) + params["bias"]
        return y, x

    def backward(key, params, x, dy, need_dx: bool = True):
        check(params)
        k_w, k_x = jax.random.split(key)
        rows = math.prod(x.shape[:-1])  # every leading axis is a batch axis
        x2, dy2 = x.reshape(rows, in_features), dy.reshape(rows, out_features)
        grads = {"weight": matmul(k_w, dy2.T, x2, **opts), "bias": dy2.sum(0)}
        dx = matmul(k_x, dy, params["weight"], **opts) if need_dx else None
        return grads, dx

    def plain(params, x):
        y = x @ params["weight"].T
        return y + jnp.broadcast_to(params["bias"], y.shape)

    return Layer(init, forward, backward, plain)


def ReLU(*, mode: str = "protocol") -> Layer:
    r"""Rectified linear unit :math:`y = \max(x, 0)` via :func:`jaxmpc.relu`.

    The forward's comparison bit :math:`\mathbb{1}[x > 0]` is kept as the residual, so the backward
    :math:`dx = \mathbb{1}[x > 0] \cdot dy` is one Beaver product of a 0/1 integer by a fixed-point
    value: no second comparison and no truncation (PySyft did both). ``mode="ideal"`` uses the ideal
    functionality for the comparison and the products (see :func:`jaxmpc.msb`).
    """
    def forward(key, params, x):
        from ..ops.compare import relu

        y, bit = relu(key, x, mode=mode)
        return y, bit

    def backward(key, params, bit, dy, need_dx: bool = True):
        return {}, (mul(key, bit, dy, mode=mode) if need_dx else None)

    return Layer(lambda key: {}, forward, backward, lambda params, x: jax.nn.relu(x))


def serial(*layers: Layer) -> Layer:
    """Compose layers in sequence; params and residuals are lists with one entry per layer.

    The first layer's input gradient is never computed (the input is data, not a parameter).
    """
    def init(key):
        return [layer.init(k) for layer, k in zip(layers, jax.random.split(key, len(layers)))]

    def check(params, what: str = "params"):
        if not isinstance(params, (list, tuple)) or len(params) != len(layers):
            raise InputTypeError(
                f"serial: {what} must be a list with one entry per layer ({len(layers)}), got "
                f"{type(params).__name__}" + (f" of length {len(params)}." if isinstance(params, (list, tuple)) else "."))

    def forward(key, params, x):
        check(params)
        residuals = []
        for layer, p, k in zip(layers, params, jax.random.split(key, len(layers))):
            x, r = layer.forward(k, p, x)
            residuals.append(r)
        return x, residuals

    def backward(key, params, residuals, dy, need_dx: bool = True):
        check(params)
        check(residuals, "residuals")
        grads = [None] * len(layers)
        keys = jax.random.split(key, len(layers))
        for i in reversed(range(len(layers))):
            grads[i], dy = layers[i].backward(keys[i], params[i], residuals[i], dy,
                                              need_dx=need_dx or i > 0)
        return grads, dy

    def plain(params, x):
        for layer, p in zip(layers, params):
            x = layer.plain(p, x)
        return x

    return Layer(init, forward, backward, plain)


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class InputShape:
    """A static shape kept as a layer's residual: a pytree with no leaves, so it passes through
    ``jit``, ``vmap`` and ``scan`` unchanged (the backward of a pooling or flatten layer needs only
    the shape of its input)."""

    shape: tuple[int, ...]


def Flatten() -> Layer:
    """Flatten every axis but the batch: ``(B, ...) -> (B, prod(...))`` (local, like ``nn.Flatten``).

    The backward reshapes the gradient back (the residual is the input's static shape).
    """
    def forward(key, params, x):
        if not isinstance(x, Shared) or x.ndim < 1:
            raise InputTypeError(f"Flatten: x must be a jaxmpc.Shared with a batch axis, got {x!r}.")
        return x.reshape(x.shape[0], -1), InputShape(x.shape)

    def backward(key, params, in_shape, dy, need_dx: bool = True):
        return {}, (dy.reshape(in_shape.shape) if need_dx else None)

    return Layer(lambda key: {}, forward, backward, lambda params, x: x.reshape(x.shape[0], -1))
