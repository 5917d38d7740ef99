"""Nonlinear approximations (jaxmpc.ops.approx) and the classification losses.

Each function is checked (a) against its float64 plaintext twin (the same approximation) within an
MPC bound in units of 1/s, and (b) against the exact float64 function within its stated
approximation error over its stated domain. Base 2, 16 fractional bits. Compile time is the budget
(2 CPU cores for the whole suite): one jitted function per party count evaluates everything on tiny
inputs, cached across tests.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc.ops import approx
from jaxmpc.nn import losses
from jaxmpc.protocols.additive.binary import msb_rounds
from jaxmpc.errors import InputTypeError

FXP = jaxmpc.FixedPoint(2, 16)
S = 2.0 ** 16
NE = 8  # default exp iterations

INPUTS = {
    "exp": np.array([-8.0, -4.0, -1.0, -0.3, 0.0, 0.5, 1.0, 2.0, 4.0]),
    "reciprocal": np.array([0.05, 0.1, 0.5, 1.0, 2.0, 10.0, 50.0, 200.0]),
    "sigmoid": np.array([-16.0, -4.0, -1.0, -0.1, 0.0, 0.1, 1.0, 4.0, 16.0]),
    "tanh": np.array([-8.0, -2.0, -0.5, 0.0, 0.5, 2.0, 8.0]),
    "rsqrt": np.array([0.1, 0.5, 1.0, 4.0, 25.0, 100.0]),
    "log": np.array([1.0, 1.5, 2.0, 5.0, 10.0, 50.0, 100.0]),
    "softmax": np.array([[0.0, 1.0, -1.0, 2.0, 0.5], [3.0, 3.0, 3.0, 3.0, 3.0],
                         [-4.0, 4.0, 0.0, 1.0, -2.0]]),
}
EXACT = {
    "exp": np.exp,
    "reciprocal": lambda x: 1.0 / x,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "rsqrt": lambda x: 1.0 / np.sqrt(x),
    "log": np.log,
    "softmax": lambda x: np.asarray(jax.nn.softmax(jnp.asarray(x), axis=-1)),
}
# MPC bound |shared - twin| in units of 1/s, as a function of the twin's output and the input
MPC_BOUND = {
    "exp": lambda y, x: 2.0 ** (NE + 1) * np.abs(y) + 16,  # x/2^n's rounding amplified 2^n times
    "reciprocal": lambda y, x: 16 + 16 / x,
    "sigmoid": lambda y, x: 128,
    "tanh": lambda y, x: 256,
    "rsqrt": lambda y, x: 64,
    "log": lambda y, x: 2.0 ** (NE + 2),
    "softmax": lambda y, x: 256,
}
# stated approximation error (twin vs exact float64) over the domain the inputs cover
APPROX_BOUND = {
    "exp": lambda e, x: 1.1 * x**2 / 2.0 ** (NE + 1) * e + 1e-12,  # relative ~ x^2 / 2^(n+1)
    "reciprocal": lambda e, x: 1e-9 * e,
    "sigmoid": lambda e, x: 1e-3,
    "tanh": lambda e, x: 2e-3,
    "rsqrt": lambda e, x: 1e-8 * e,
    "log": lambda e, x: 0.04,
    "softmax": lambda e, x: 3e-3,
}
# The 3-party suite runs exp, sigmoid (3-party msb) and the softmax cross-entropy (tree max, exp,
# reciprocal, log inside); the rest only with 2 parties, to keep the compile time down.
N2_ONLY = ("reciprocal", "tanh", "rsqrt", "log", "softmax", "bce")
B, C = 4, 3
LOGITS = np.array([[1.0, -2.0, 0.5], [3.0, 2.5, -1.0], [0.0, 0.0, 0.0], [-4.0, 2.0, 1.0]])
ONEHOT = np.eye(C)[[0, 2, 1, 1]]
BLOGITS = np.array([-8.0, -2.0, -0.5, 0.0, 0.7, 3.0])
BTARGETS = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
DIV_X = np.array([1.0, -3.0, 0.5, 7.0, -100.0])
DIV_Y = np.array([0.05, 2.0, 1.0, 50.0, 200.0])


def _names(n):
    return [k for k in INPUTS if n == 2 or k not in N2_ONLY]


@functools.lru_cache(maxsize=None)
def _suite(n: int):
    """One jitted function per party count: every function and both losses."""
    names = _names(n)

    @jax.jit
    def run(key, xs, logits, onehot, blogits, btargets):
        keys = jax.random.split(key, len(names) + 3)
        out = {k: jaxmpc.reveal(getattr(approx, k)(keys[i], xs[k])) for i, k in enumerate(names)}
        out["sce"] = tuple(jaxmpc.reveal(v) for v in losses.softmax_cross_entropy(keys[-2], logits, onehot))
        if n == 2:
            out["divide"] = jaxmpc.reveal(approx.divide(keys[-3], xs["div_x"], xs["div_y"]))
            out["bce"] = tuple(jaxmpc.reveal(v) for v in
                               losses.binary_cross_entropy_with_sigmoid(keys[-1], blogits, btargets))
        return out

    return run


@functools.lru_cache(maxsize=None)
def _results(n: int):
    keys = jax.random.split(jaxmpc.key(1000 + n), 8)
    names = _names(n)
    ks = jax.random.split(keys[0], len(names))
    xs = {k: jaxmpc.share(ks[i], INPUTS[k], FXP, n) for i, k in enumerate(names)}
    if n == 2:
        xs["div_x"] = jaxmpc.share(keys[5], DIV_X, FXP, n)
        xs["div_y"] = jaxmpc.share(keys[6], DIV_Y, FXP, n)
    logits = jaxmpc.share(keys[1], LOGITS, FXP, n)
    onehot = jaxmpc.share(keys[2], ONEHOT, FXP, n)
    blogits = jaxmpc.share(keys[3], BLOGITS, FXP, n)
    btargets = jaxmpc.share(keys[4], BTARGETS, FXP, n)
    out = _suite(n)(keys[7], xs, logits, onehot, blogits, btargets)
    return jax.tree_util.tree_map(np.asarray, out)


CASES = [(n, k) for n in (2, 3) for k in _names(n)]


@pytest.mark.parametrize("n,name", CASES)
def test_against_twin_and_exact(n, name):
    x = INPUTS[name]
    y = _results(n)[name]
    twin = np.asarray(getattr(approx, name + "_plain")(jnp.asarray(x)))
    exact = EXACT[name](x)
    xb = x if name != "softmax" else 0.0
    mpc_err = np.abs(y - twin) * S
    assert np.all(mpc_err <= MPC_BOUND[name](twin, xb)), (name, mpc_err.max())
    approx_err = np.abs(twin - exact)
    assert np.all(approx_err <= APPROX_BOUND[name](exact, xb)), (name, approx_err.max())


def test_log_small_domain_bound():
    """The log's limit-exp bias is ~ log(x)^2 / 2^(n+1): below 0.011 on [1, 10]."""
    x = np.geomspace(1.0, 10.0, 50)
    assert np.max(np.abs(np.asarray(approx.log_plain(jnp.asarray(x))) - np.log(x))) < 0.011


def test_divide():
    """x / y: the reciprocal's MPC bound times |x|, plus the product's rounding."""
    y = _results(2)["divide"]
    twin = np.asarray(approx.divide_plain(jnp.asarray(DIV_X), jnp.asarray(DIV_Y)))
    assert np.all(np.abs(y - twin) * S <= np.abs(DIV_X) * (16 + 16 / DIV_Y) + 2)
    assert np.allclose(twin, DIV_X / DIV_Y, rtol=1e-9)


def test_softmax_rows_sum_to_one():
    assert np.allclose(_results(2)["softmax"].sum(-1), 1.0, atol=256 / S)


@pytest.mark.parametrize("n", [2, 3])
def test_softmax_cross_entropy(n):
    loss, dloss = _results(n)["sce"]
    ref = float(losses.softmax_cross_entropy_plain(jnp.asarray(LOGITS), jnp.asarray(ONEHOT)))
    grad = np.asarray(jax.grad(losses.softmax_cross_entropy_plain)(jnp.asarray(LOGITS), jnp.asarray(ONEHOT)))
    assert loss.shape == () and dloss.shape == (B, C)
    assert abs(float(loss) - ref) < 0.01
    assert np.max(np.abs(dloss - grad)) < 3e-3 / B


def test_binary_cross_entropy_with_sigmoid():
    loss, dloss = _results(2)["bce"]
    x, t = jnp.asarray(BLOGITS), jnp.asarray(BTARGETS)
    ref = float(losses.binary_cross_entropy_with_sigmoid_plain(x, t))
    grad = np.asarray(jax.grad(losses.binary_cross_entropy_with_sigmoid_plain)(x, t))
    assert abs(float(loss) - ref) < 3e-3
    assert np.max(np.abs(dloss - grad)) < 2e-3 / BLOGITS.size


def test_costs_match_formulas():
    x = jaxmpc.Shared(jax.ShapeDtypeStruct((2, 3), jnp.uint64), FXP)
    m = msb_rounds(2)
    assert jaxmpc.cost(approx.exp, jaxmpc.key(1), x, iterations=5).rounds == 1 + 2 * 5
    assert jaxmpc.cost(approx.reciprocal, jaxmpc.key(2), x).rounds == 2 + 2 * NE + 4 * 10
    assert jaxmpc.cost(approx.sigmoid, jaxmpc.key(3), x).rounds == m + 36
    z = jaxmpc.Shared(jax.ShapeDtypeStruct((2, 4, 10), jnp.uint64), FXP)  # B = 4, C = 10
    sce = jaxmpc.cost(losses.softmax_cross_entropy, jaxmpc.key(4), z, z).rounds
    assert sce == 4 * (m + 1) + (1 + 2 * NE) + (2 + 2 * NE + 40) + 2 + 87 + 2 + 2
    assert jaxmpc.cost(losses.binary_cross_entropy_with_sigmoid, jaxmpc.key(9), z, z).rounds == m + 127


def test_bad_input():
    k = jaxmpc.key(5)
    with pytest.raises(InputTypeError, match="fixed-point"):
        approx.exp(k, jnp.ones(3))
    x = jaxmpc.share(jax.random.split(jaxmpc.key(6))[0], [1.0], FXP)
    with pytest.raises(InputTypeError, match="static"):
        approx.exp(jaxmpc.key(7), x, iterations=2.0)
    with pytest.raises(InputTypeError, match="shape"):
        losses.softmax_cross_entropy(jaxmpc.key(8), x, np.ones(1))


def test_public_exports():
    for name in ("exp", "reciprocal", "divide", "rsqrt", "sigmoid", "tanh", "log", "softmax"):
        assert getattr(jaxmpc, name) is getattr(approx, name)


def test_experiment_script_small(tmp_path):
    """experiments/approx.py: one vmapped call over precisions; more bits, smaller MPC error."""
    import importlib.util
    import json
    import os
    path = os.path.join(os.path.dirname(__file__), "..", "experiments", "approx.py")
    spec = importlib.util.spec_from_file_location("jaxmpc_experiments_approx", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "approx.json"
    rows = mod.main(["--only", "exp", "--iterations", "8", "--precisions", "10", "16",
                     "--json", str(out)])
    assert [r["precision"] for r in rows] == [10, 16]
    assert json.loads(out.read_text())["rows"][1]["function"] == "exp"
    lo, hi = rows
    assert hi["err"] < lo["err"] and abs(hi["approx"] - 0.12) < 0.01  # relative, at x = -8
    assert hi["mpc_units"] < 2.0 ** 9 * 55 + 16


def test_exp_local_truncation():
    """The truncation option passes through (2-party local truncation, SecureML)."""
    k0, k1 = jax.random.split(jaxmpc.key(11))
    x = INPUTS["exp"]
    y = jax.jit(lambda k, v: jaxmpc.reveal(approx.exp(k, v, truncation="local")))(
        k1, jaxmpc.share(k0, x, FXP, 2))
    twin = np.asarray(approx.exp_plain(jnp.asarray(x)))
    assert np.all(np.abs(np.asarray(y) - twin) * S <= MPC_BOUND["exp"](twin, x))
