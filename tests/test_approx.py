"""Nonlinear approximations (jaxmpc.ops.approx), their accuracy page (docs/approx.md) and the
classification losses.

Each approximation is measured by :func:`jaxmpc.ops.accuracy.measure` on a grid of its documented
domain at 2 and 3 parties, 16 fractional bits (the measurements docs/approx.md is made of, so the
page check reuses the compiled programs): (a) the error against float64 lies under the bound of
``DOMAINS`` that the docstring states, (b) the shared result lies within an MPC bound of the
plaintext twin, in units of 1/s, element by element, (c) the page on disk is the page the code gives.
Compile time is the budget (2 CPU cores for the whole suite): one program per function and party
count, cached across tests.
"""
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc.ops import accuracy, approx
from jaxmpc.nn import losses
from jaxmpc.protocols.additive.binary import msb_rounds
from jaxmpc.errors import InputTypeError

FXP = jaxmpc.FixedPoint(2, 16)
S = 2.0 ** accuracy.PRECISION
NE = 8  # default exp iterations
DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "approx.md")
NAMES = accuracy.NAMES
PARTIES = accuracy.PARTIES

# MPC bound |shared - twin| in units of 1/s, as a function of the twin's output y and the input x
# (the domain's operand)
MPC_BOUND = {
    "exp": lambda y, x: 2.0 ** (NE + 1) * np.abs(y) + 16,  # x/2^n's rounding amplified 2^n times
    "reciprocal": lambda y, x: 16 + 16 / x,
    "divide": lambda y, x: 8 * (16 + 16 / x) + 2,  # |dividend| <= 8 times the reciprocal's, + 1 product
    "sigmoid": lambda y, x: 128,
    "tanh": lambda y, x: 256,
    "rsqrt": lambda y, x: 64,
    "log": lambda y, x: 2.0 ** (NE + 2),
    "softmax": lambda y, x: 256,
}


@functools.lru_cache(maxsize=None)
def _measured(n: int) -> dict:
    """The page's measurements (one compiled program per party count, reused by the page)."""
    return {name: ms[0] for name, ms in accuracy.measure_all(n_parties=n).items()}


def _outputs(name: str, n: int) -> np.ndarray:
    """The page's revealed results ``[keys, *grid]``."""
    return _measured(n)[name].results


@functools.lru_cache(maxsize=None)
def _page() -> str:
    for n in PARTIES:
        _measured(n)  # compiles each program once, for both
    return accuracy.page()


CASES = [(n, name) for n in PARTIES for name in NAMES]


@pytest.mark.parametrize("n,name", CASES)
def test_error_is_under_the_documented_bound(n, name):
    m = _measured(n)[name]
    bound = approx.DOMAINS[name].bound
    assert (m.low, m.high) == approx.domain(name) and m.n_parties == n
    assert m.err <= bound and m.twin_err <= bound, (name, n, m.err, m.twin_err, m.worst)


@pytest.mark.parametrize("n,name", CASES)
def test_against_twin_element_by_element(n, name):
    ops = _measured(n)[name].inputs
    y = _outputs(name, n)
    twin = np.asarray(getattr(approx, name + "_plain")(*(jnp.asarray(v) for v in ops)))
    x = ops[-1] if name != "softmax" else 0.0
    err = np.abs(y - twin) * S
    assert np.all(err <= MPC_BOUND[name](twin, x)), (name, err.max())


@pytest.mark.parametrize("name", NAMES)
def test_docstring_states_the_domain_and_bound(name):
    """The docstring quotes the table: the default domain's interval and the error bound."""
    low, high = approx.domain(name)
    doc = " ".join(getattr(approx, name).__doc__.split())
    assert f"[{low:g}, {high:g}]" in doc, (name, low, high)
    assert f"at most {approx.DOMAINS[name].bound:g}" in doc, name


def test_the_page_is_fresh():
    with open(DOC) as f:
        on_disk = f.read()
    problems = accuracy.problems(_page(), on_disk)
    assert not problems, problems


def test_a_modified_page_is_stale():
    text = _page()
    row = next(line for line in text.splitlines() if line.startswith("| `exp` |"))
    wrong = row.rsplit("|", 2)[0] + "| 0.5 |"  # another bound
    edited = text.replace(row, wrong)
    assert edited != text and wrong != row
    msg = accuracy.problems(text, edited)
    assert "is stale" in msg and "-" + wrong in msg and "+" + row in msg and accuracy.COMMAND in msg
    assert "is missing" in accuracy.problems(text, None) and accuracy.problems(text, text) == ""


def test_more_bits_less_error():
    """The measurement over precisions (what experiments/approx.py sweeps): one call, a row each."""
    lo, hi = accuracy.measure("exp", precisions=(10, 16), points=9, keys=2)
    assert (lo.precision, hi.precision) == (10, 16) and lo.static == {"iterations": 8}
    assert hi.err < lo.err and lo.twin_err == hi.twin_err and hi.results.shape == (2, 17)
    assert hi.size == 9 + 9 - 1  # linear over [-256, 4] and over its part in [-16, 4] (4 in both)


def test_one_function_alone_gives_the_page_figures():
    """measure (one function per program) and measure_all (all in one) draw the same keys."""
    (alone,) = accuracy.measure("exp")
    np.testing.assert_array_equal(alone.results, _measured(2)["exp"].results)
    assert alone.err == _measured(2)["exp"].err


def test_inputs_cover_the_domain_and_its_edges():
    for name in NAMES:
        low, high = approx.domain(name)
        v = accuracy.inputs(name)[-1] if name != "softmax" else \
            (accuracy.inputs(name)[0] - accuracy.inputs(name)[0].max(-1, keepdims=True))
        assert v.min() == low and v.max() == high, name
    assert accuracy.inputs("exp", iterations=6)[0].min() == -64.0  # the domain follows the iterations


def test_divide():
    """x / y on the page's grid: the reciprocal's MPC bound times |x|, plus the product's rounding."""
    x, yv = accuracy.inputs("divide")
    twin = np.asarray(approx.divide_plain(jnp.asarray(x), jnp.asarray(yv)))
    assert np.allclose(twin, x / yv, rtol=1e-9)


def test_softmax_rows_sum_to_one():
    assert np.allclose(_outputs("softmax", 2).sum(-1), 1.0, atol=256 / S)


# ---- losses -----------------------------------------------------------------------------------------
B, C = 4, 3
LOGITS = np.array([[1.0, -2.0, 0.5], [3.0, 2.5, -1.0], [0.0, 0.0, 0.0], [-4.0, 2.0, 1.0]])
ONEHOT = np.eye(C)[[0, 2, 1, 1]]
BLOGITS = np.array([-8.0, -2.0, -0.5, 0.0, 0.7, 3.0])
BTARGETS = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.0])


@functools.lru_cache(maxsize=None)
def _losses():
    """Both losses in one jitted call, 2 parties (the approximations inside are measured at 2 and 3
    parties above)."""
    @jax.jit
    def run(key, logits, onehot, blogits, btargets):
        k0, k1 = jax.random.split(key)
        return {"sce": tuple(jaxmpc.reveal(v) for v in losses.softmax_cross_entropy(k0, logits, onehot)),
                "bce": tuple(jaxmpc.reveal(v) for v in
                             losses.binary_cross_entropy_with_sigmoid(k1, blogits, btargets))}

    keys = jax.random.split(jaxmpc.key(1002), 5)
    args = [jaxmpc.share(k, v, FXP, 2) for k, v in zip(keys[:4], (LOGITS, ONEHOT, BLOGITS, BTARGETS))]
    return jax.tree_util.tree_map(np.asarray, run(keys[4], *args))


def test_softmax_cross_entropy():
    loss, dloss = _losses()["sce"]
    ref = float(losses.softmax_cross_entropy_plain(jnp.asarray(LOGITS), jnp.asarray(ONEHOT)))
    grad = np.asarray(jax.grad(losses.softmax_cross_entropy_plain)(jnp.asarray(LOGITS), jnp.asarray(ONEHOT)))
    assert loss.shape == () and dloss.shape == (B, C)
    assert abs(float(loss) - ref) < 0.01
    assert np.max(np.abs(dloss - grad)) < 3e-3 / B


def test_binary_cross_entropy_with_sigmoid():
    loss, dloss = _losses()["bce"]
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


def test_exp_local_truncation():
    """The truncation option passes through (2-party local truncation, SecureML)."""
    k0, k1 = jax.random.split(jaxmpc.key(11))
    x = np.array([-8.0, -4.0, -1.0, -0.3, 0.0, 0.5, 1.0, 2.0, 4.0])
    y = jax.jit(lambda k, v: jaxmpc.reveal(approx.exp(k, v, truncation="local")))(
        k1, jaxmpc.share(k0, x, FXP, 2))
    twin = np.asarray(approx.exp_plain(jnp.asarray(x)))
    assert np.all(np.abs(np.asarray(y) - twin) * S <= MPC_BOUND["exp"](twin, x))
