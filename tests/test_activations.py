"""Manual gradients of the approximation layers (jaxmpc.nn.activations) against ``jax.vjp`` of their
plaintext twins, as CrypTen's test_gradients does.

One jitted program per layer (forward and backward, 2 parties, 16 fractional bits, 8 elements):
``|dx - g| <= bound * max(1, |g|)`` with ``g`` the vjp of the twin at the same cotangent. The bound
is the MPC rounding plus the gap between the twin's own derivative and the exact formula the
backward uses (for Exp, :math:`(1 + x/2^n)^{2^n - 1}` against :math:`(1 + x/2^n)^{2^n}`: a relative
:math:`|x|/2^n`, 0.012 at x = 3).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc import nn
from jaxmpc.errors import InputTypeError
from jaxmpc.nn import activations as A

FXP = jaxmpc.FixedPoint(2, 16)
ROWS = np.linspace(-3.0, 3.0, 8).reshape(2, 4)

# name: (layer, inputs, bound)
CASES = {
    "Exp": (A.Exp(), np.linspace(-4.0, 3.0, 8), 0.015),
    "Reciprocal": (A.Reciprocal(), np.array([-8.0, -2.0, -0.5, 0.3, 1.0, 3.0, 7.0, 20.0]), 1e-3),
    "Sigmoid": (A.Sigmoid(), np.linspace(-8.0, 8.0, 8), 2e-3),
    "Tanh": (A.Tanh(), np.linspace(-4.0, 4.0, 8), 5e-3),
    "Log": (A.Log(), np.linspace(1.0, 100.0, 8), 2e-3),
    "Sqrt": (A.Sqrt(), np.array([0.01, 0.3, 1.0, 2.0, 9.0, 50.0, 400.0, 1e4]), 1e-3),
    "Abs": (A.Abs(), np.array([-3.0, -0.5, 0.0, 0.25, 1.0, 2.0, -7.0, 4.0]), 1e-4),
    "Softmax": (A.Softmax(), ROWS, 4e-3),
    "LogSoftmax": (A.LogSoftmax(), ROWS, 4e-3),
    "Softmax(axis=0)": (A.Softmax(axis=0), ROWS, 4e-3),
}


def _cotangent(x):
    return np.cos(np.arange(x.size) * 1.3).reshape(x.shape)


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_matches_vjp_of_the_twin(name):
    layer, x, bound = CASES[name]
    dy = _cotangent(x)

    @jax.jit
    def run(key):
        k = jax.random.split(key, 4)
        xs, dys = jaxmpc.share(k[0], x, FXP), jaxmpc.share(k[1], dy, FXP)
        y, res = layer.forward(k[2], {}, xs)
        grads, dx = layer.backward(k[3], {}, res, dys)
        assert grads == {}
        return jaxmpc.reveal(y), jaxmpc.reveal(dx)

    y, dx = run(jaxmpc.key(0))
    y_plain, vjp = jax.vjp(lambda v: layer.plain({}, v), jnp.asarray(x))
    (g,) = vjp(jnp.asarray(dy))
    assert np.all(np.abs(np.asarray(y) - y_plain) <= 2e-2 * np.maximum(1.0, np.abs(y_plain)))
    err = np.abs(np.asarray(dx) - np.asarray(g)) / np.maximum(1.0, np.abs(np.asarray(g)))
    assert err.max() <= bound, (name, err.max(), np.asarray(dx), np.asarray(g))


def test_no_input_gradient_when_not_needed():
    k = jax.random.split(jaxmpc.key(1), 3)
    x = jaxmpc.share(k[0], [-1.0, 2.0], FXP)
    y, res = A.Abs().forward(k[1], {}, x)
    assert A.Abs().backward(k[2], {}, res, y, need_dx=False) == ({}, None)


def test_in_serial_with_linear():
    """A Tanh after a Linear, through serial: the chained backward is the vjp of the twin."""
    model = nn.serial(nn.Linear(3, 2), A.Tanh())
    k = jax.random.split(jaxmpc.key(2), 5)
    params_plain = model.init(k[0])
    x = np.array([[0.5, -1.0, 0.25], [1.5, 0.0, -0.5]])
    dy = np.array([[1.0, -0.5], [0.25, 2.0]])
    params = jaxmpc.share(k[1], params_plain, FXP)
    y, res = model.forward(k[2], params, jaxmpc.share(k[3], x, FXP))
    grads, _ = model.backward(k[4], params, res, jaxmpc.share(jaxmpc.key(3), dy, FXP))
    _, vjp = jax.vjp(lambda p: model.plain(p, jnp.asarray(x)), params_plain)
    (g,) = vjp(jnp.asarray(dy))
    got = jaxmpc.reveal(grads[0]["weight"])
    assert np.max(np.abs(np.asarray(got) - np.asarray(g[0]["weight"]))) < 1e-2


def test_bad_options_and_inputs():
    with pytest.raises(InputTypeError, match="not options of jaxmpc.ops.approx.exp"):
        A.Exp(iteration=3)
    with pytest.raises(InputTypeError, match="fixed-point jaxmpc.Shared"):
        A.Sigmoid().forward(jaxmpc.key(0), {}, jnp.zeros(3))
