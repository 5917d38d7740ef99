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
from jaxmpc.errors import InputTypeError, ProtocolError

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
    "reciprocal": lambda y, x: 16 + 16 / np.abs(x),
    "divide": lambda y, x: 8 * (16 + 16 / np.abs(x)) + 2,  # |dividend| <= 8 times the reciprocal's, + 1
    "sigmoid": lambda y, x: 128,
    "tanh": lambda y, x: 256,
    "rsqrt": lambda y, x: 16 + 8 * np.maximum(1.0, y),  # n^(-1/2)'s roundings times 2^(-(k+1)/2) <= y
    "log": lambda y, x: 2.0 ** (NE + 2),
    "softmax": lambda y, x: 256,
    "sqrt": lambda y, x: 4 * y + 16,  # the last step's roundings, about 2h + 3 = sqrt(x) + 3
    "log_softmax": lambda y, x: 2.0 ** (NE + 2),  # the log's
    "erf": lambda y, x: 64,  # a few units per Horner step
    "gelu": lambda y, x: 128,  # erf's times r/2 = 2.1
    "exp2": lambda y, x: 2.0 ** (NE + 1) * np.abs(y) + 16,  # exp's
    "log2": lambda y, x: 2.0 ** (NE + 2) / np.log(2.0) + 4,  # the log's, times 1/ln 2
    "log1p": lambda y, x: 2.0 ** (NE + 2),  # the log's
    "cos": lambda y, x: 64,  # a few units per Horner step (|u| <= 1)
    "sin": lambda y, x: 64,
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
    ops = tuple(accuracy.encoded(v, accuracy.PRECISION) for v in _measured(n)[name].inputs)
    y = _outputs(name, n)
    twin = np.asarray(getattr(approx, name + "_plain")(*(jnp.asarray(v) for v in ops)))
    x = ops[-1] if name not in accuracy.ROWS else 0.0
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
    assert (lo.precision, hi.precision) == (10, 16) and lo.static == {"iterations": 8, "method": "limit"}
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
        v = accuracy.inputs(name)[-1] if name not in accuracy.ROWS else \
            (accuracy.inputs(name)[0] - accuracy.inputs(name)[0].max(-1, keepdims=True))
        if approx.DOMAINS[name].operand.startswith("|"):  # |x|: both signs, mirrored
            np.testing.assert_array_equal(np.sort(-v), v)
            v = np.abs(v)
        assert v.min() == low and v.max() == high, name
    assert accuracy.inputs("exp", iterations=6)[0].min() == -64.0  # the domain follows the iterations
    assert accuracy.inputs("reciprocal", signed=False)[0].min() == 2.0 ** -12  # the fast path: positive only
    assert accuracy.inputs("reciprocal", signed=False, range="narrow")[0].min() == 0.05


def test_divide():
    """x / y on the page's grid: the reciprocal's MPC bound times |x|, plus the product's rounding."""
    x, yv = accuracy.inputs("divide")
    twin = np.asarray(approx.divide_plain(jnp.asarray(x), jnp.asarray(yv)))
    assert np.allclose(twin, x / yv, rtol=1e-9)


def test_softmax_rows_sum_to_one():
    assert np.allclose(_outputs("softmax", 2).sum(-1), 1.0, atol=256 / S)


@pytest.mark.parametrize("n", PARTIES)
def test_log_softmax_is_the_log_of_softmax(n):
    """exp(log_softmax) sums to 1 per row (the log's error, 1.5 %, as a relative error of the sum);
    log_softmax and the log of softmax agree within their two bounds."""
    ls, sm = _outputs("log_softmax", n), _outputs("softmax", n)
    assert np.allclose(np.exp(ls).sum(-1), 1.0, rtol=approx.DOMAINS["log_softmax"].bound)
    big = sm > 0.05  # where the log of the softmax is accurate
    ls, sm = ls[big], sm[big]
    assert np.all(np.abs(ls - np.log(sm)) <= approx.DOMAINS["log_softmax"].bound * np.maximum(1, np.abs(ls))
                  + approx.DOMAINS["softmax"].bound / sm)


def test_erf_twin_on_a_fine_grid():
    """The polynomial alone (no MPC): within 1e-4 of erf on [-4, 4] at step 1e-3, odd, saturated
    beyond ERF_RANGE; GeLU's twin likewise, its error not growing with |x|."""
    x = np.linspace(-4.0, 4.0, 8001)
    twin = np.asarray(approx.erf_plain(jnp.asarray(x)))
    assert np.max(np.abs(twin - accuracy.EXACT["erf"](x))) <= 1e-4
    np.testing.assert_allclose(twin, -twin[::-1], atol=1e-15)
    far = np.array([-1e6, -50.0, -approx.ERF_RANGE, approx.ERF_RANGE, 50.0, 1e6])
    sat = np.asarray(approx.erf_plain(jnp.asarray(far)))
    assert np.all(sat[:3] == sat[0]) and np.all(sat[3:] == -sat[0]) and abs(sat[0] + 1) <= 1e-4
    g = np.concatenate([x * 2, far])
    err = np.abs(np.asarray(approx.gelu_plain(jnp.asarray(g))) - accuracy.EXACT["gelu"](g))
    assert np.max(err) <= 2e-4, np.max(err)
    coeffs = approx.erf_coefficients()
    assert len(coeffs) == 9 and approx.erf_coefficients(17) == coeffs  # (d + 1)/2 terms


@functools.lru_cache(maxsize=None)
def _reciprocal_paths():
    """reciprocal with signed=False on positive inputs and one negative one (out of its domain), and
    the default (signed) on inputs of both signs, some out of its domain, in one jitted call under
    the diagnostics, 2 parties."""
    pos = np.array([0.05, 0.3, 1.0, 7.5, 200.0, -3.0])  # the last one: out of signed=False's domain
    mixed = np.array([-200.0, -2.0, -0.05, -0.04, 0.04, 0.5, 250.0, -250.0])

    @jax.jit
    @jaxmpc.diagnostics.run
    def run(key, a, b):
        k = jax.random.split(key)
        return (jaxmpc.reveal(approx.reciprocal(k[0], a, signed=False, range="narrow")),
                jaxmpc.reveal(approx.reciprocal(k[1], b, range="narrow")))

    keys = jax.random.split(jaxmpc.key(1003), 3)
    out, rep = run(keys[2], *(jaxmpc.share(k, v, FXP, 2) for k, v in zip(keys, (pos, mixed))))
    return (pos, mixed), tuple(np.asarray(v) for v in out), rep


def test_reciprocal_fast_path_and_signs():
    """The narrow range: signed=False is the positive-only path (the twins agree on x > 0); the
    default takes both signs; the diagnostics count |x| outside [0.05, 200] (4 of mixed) and, with signed=False,
    every x outside it (the negative one)."""
    (pos, mixed), (fast, signed), rep = _reciprocal_paths()
    pos, fast = pos[:-1], fast[:-1]
    twin = np.asarray(approx.reciprocal_plain(jnp.asarray(pos), signed=False, range="narrow"))
    assert np.all(np.abs(fast - twin) * S <= MPC_BOUND["reciprocal"](twin, pos))
    np.testing.assert_allclose(twin, approx.reciprocal_plain(jnp.asarray(pos), range="narrow"), rtol=1e-12)
    inside = (np.abs(mixed) >= 0.05) & (np.abs(mixed) <= 200)
    bound = approx.DOMAINS["reciprocal"].bound * np.maximum(1, 1 / np.abs(mixed[inside]))
    assert np.all(np.abs(signed[inside] - 1 / mixed[inside]) <= bound)
    assert int(rep["reciprocal"].out_of_domain) == 1 + 4 and int(rep["reciprocal"].elements) == 6 + 8
    assert int(rep["reciprocal"].calls) == 2 and not bool(rep.ok)


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
    narrow = {"range": "narrow"}
    assert jaxmpc.cost(approx.reciprocal, jaxmpc.key(2), x, signed=False, **narrow).rounds == 2 + 2 * NE + 4 * 10
    assert jaxmpc.cost(approx.reciprocal, jaxmpc.key(2), x, **narrow).rounds == m + 3 + 2 * NE + 4 * 10
    assert jaxmpc.cost(approx.divide, jaxmpc.key(2), x, x, **narrow).rounds == m + 3 + 2 * NE + 4 * 10 + 2
    assert jaxmpc.cost(approx.sigmoid, jaxmpc.key(3), x).rounds == m + 36
    assert jaxmpc.cost(approx.sqrt, jaxmpc.key(3), x, **narrow).rounds \
        == jaxmpc.cost(approx.rsqrt, jaxmpc.key(3), x, **narrow).rounds == 3 + 2 * NE + 6 * 5
    # wide: the exponent's comparisons in one msb; Goldschmidt 2 rounds a step, Newton 6
    for i in (1, 3):
        assert jaxmpc.cost(approx.reciprocal, jaxmpc.key(2), x, iterations=i).rounds == 2 * m + 5 + 2 * i
        assert jaxmpc.cost(approx.reciprocal, jaxmpc.key(2), x, iterations=i, signed=False).rounds \
            == m + 4 + 2 * i
        assert jaxmpc.cost(approx.divide, jaxmpc.key(2), x, x, iterations=i).rounds == 2 * m + 5 + 2 * i
        assert jaxmpc.cost(approx.rsqrt, jaxmpc.key(3), x, iterations=i).rounds \
            == jaxmpc.cost(approx.sqrt, jaxmpc.key(3), x, iterations=i).rounds == m + 10 + 6 * i
    assert jaxmpc.cost(approx.exp2, jaxmpc.key(3), x).rounds == 1 + 2 * NE
    assert jaxmpc.cost(approx.log2, jaxmpc.key(3), x).rounds == 87 + 1
    assert jaxmpc.cost(approx.log1p, jaxmpc.key(3), x).rounds == 87
    for degree in (5, 17):
        for f in (approx.erf, approx.gelu):
            assert jaxmpc.cost(f, jaxmpc.key(3), x, degree=degree).rounds == m + degree + 4
    # rows of 3: ceil(log2 3) = 2 levels of the tournament, exp, log
    assert jaxmpc.cost(approx.log_softmax, jaxmpc.key(3), x).rounds == 2 * (m + 1) + 1 + 2 * NE + 87
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
    for degree in (4, 1, 33, 5.0):
        with pytest.raises(InputTypeError, match="odd Python int in 3..31"):
            approx.erf(jaxmpc.key(9), x, degree=degree)
    with pytest.raises(InputTypeError, match="signed must be True or False"):
        approx.reciprocal(jaxmpc.key(10), x, signed=1)
    with pytest.raises(ProtocolError, match="0..41"):
        approx.exp2(jaxmpc.key(12), x, iterations=42)
    with pytest.raises(InputTypeError, match="True or False"):
        approx.domain("reciprocal", signed=0)
    assert approx.domain("reciprocal", signed=False) == approx.domain("reciprocal") == (2.0 ** -12, 2.0 ** 20)
    assert approx.domain("reciprocal", range="narrow") == (0.05, 200.0)
    with pytest.raises(InputTypeError, match="range must be 'wide' or 'narrow'"):
        approx.rsqrt(jaxmpc.key(13), x, range="big")


def test_public_exports():
    for name in NAMES:
        assert getattr(jaxmpc, name) is getattr(approx, name) and name in jaxmpc.__all__


def test_exp_local_truncation():
    """The truncation option passes through (2-party local truncation, SecureML)."""
    k0, k1 = jax.random.split(jaxmpc.key(11))
    x = np.array([-8.0, -4.0, -1.0, -0.3, 0.0, 0.5, 1.0, 2.0, 4.0])
    y = jax.jit(lambda k, v: jaxmpc.reveal(approx.exp(k, v, truncation="local")))(
        k1, jaxmpc.share(k0, x, FXP, 2))
    twin = np.asarray(approx.exp_plain(jnp.asarray(x)))
    assert np.all(np.abs(np.asarray(y) - twin) * S <= MPC_BOUND["exp"](twin, x))


# ---- the peers' own cases (SPU's fxp_approx tests) ---------------------------------------------------
SPU_RECIPROCAL = np.array([1.0, -2.0, -15000.0, -0.5, 3.14, 15000.0, 10000.0, 60000.0, 260000.0])
SPU_DIV_Y = np.geomspace(0.003, 2e5, 24) * np.where(np.arange(24) % 2, 1.0, -1.0)  # both signs
SPU_DIV_X = np.linspace(-10.0, 10.0, 24)
SPU_RSQRT = np.linspace(0.36, 12142.0, 24)
SPU_ATOL = 1e-4  # SPU's absolute tolerance (docs "Pitfalls - Fxp Arithmetic"): below it, no relative one


@functools.lru_cache(maxsize=None)
def _spu_cases():
    """reciprocal and divide at 16 and 18 fractional bits, rsqrt at 17 and 18 (SPU's): one program,
    the precisions vmapped."""
    def one(key, p):
        fxp = jaxmpc.FixedPoint(2, p)
        k = jax.random.split(key, 8)
        r, y, x, q = (jaxmpc.share(k[i], v, fxp) for i, v in
                      enumerate((SPU_RECIPROCAL, SPU_DIV_Y, SPU_DIV_X, SPU_RSQRT)))
        return (jaxmpc.reveal(approx.reciprocal(k[4], r)), jaxmpc.reveal(approx.divide(k[5], x, y)),
                jaxmpc.reveal(approx.rsqrt(k[6], q)), jaxmpc.reveal(approx.sqrt(k[7], q)))

    ps = jnp.asarray([16, 17, 18], jnp.int32)
    return ps, jax.jit(jax.vmap(one))(jax.random.split(jaxmpc.key(77), 3), ps)


def _within(y, exact, rtol):
    return np.abs(y - exact) <= rtol * np.abs(exact) + SPU_ATOL


def test_spu_reciprocal_divide_rsqrt_cases():
    """SPU's Reciprocal (rtol 1e-3), Div (secret / secret, y from 0.003 to 2e5, both signs) and Rsqrt
    (0.36 to 12142 at 17 and 18 bits, rtol 1e-2, here also at a tenth: 1e-3) against float64 of the
    encoded inputs (an input's own rounding is the encoding's: 0.003 is off by 1.7e-3 at 16 bits)."""
    ps, (rec, div, rsq, sq) = _spu_cases()
    for i, p in enumerate(np.asarray(ps).tolist()):
        r, x, y, q = (accuracy.encoded(v, p) for v in (SPU_RECIPROCAL, SPU_DIV_X, SPU_DIV_Y, SPU_RSQRT))
        if p in (16, 18):
            assert np.all(_within(np.asarray(rec[i]), 1 / r, 1e-3)), (p, np.asarray(rec[i]) * r)
            assert np.all(_within(np.asarray(div[i]), x / y, 1e-3)), (p, np.asarray(div[i]) * y / x)
        if p in (17, 18):
            assert np.all(_within(np.asarray(rsq[i]), q ** -0.5, 1e-3)), p
            assert np.all(_within(np.asarray(sq[i]), q ** 0.5, 1e-3)), p


@functools.lru_cache(maxsize=None)
def _exp_taylor_cases():
    """exp with method='taylor': [-8, 8] at 16 bits (iterations=4, 2 and 3 parties) and SPU's
    ExponentialPade range up to the headroom, [-22, 17.5] at 18 bits (iterations=5)."""
    a, b = np.linspace(-8.0, 8.0, 65), np.linspace(-22.0, 17.5, 65)

    def one(key):
        k = jax.random.split(key, 6)
        out = [jaxmpc.reveal(approx.exp(k[i], jaxmpc.share(k[i + 3], a, FXP, n), method="taylor", iterations=4))
               for i, n in enumerate((2, 3))]
        y = jaxmpc.share(k[5], b, jaxmpc.FixedPoint(2, 18))
        return out + [jaxmpc.reveal(approx.exp(k[2], y, method="taylor", iterations=5))]

    return a, b, jax.jit(one)(jaxmpc.key(91))


def test_exp_taylor():
    a, b, (two, three, pade) = _exp_taylor_cases()
    e = np.exp(accuracy.encoded(a, 16))
    for y in (two, three):
        assert np.max(np.abs(np.asarray(y) - e) / np.maximum(1.0, e)) <= 1e-3
    twin = np.asarray(approx.exp_plain(jnp.asarray(accuracy.encoded(a, 16)), 4, "taylor"))
    assert np.max(np.abs(twin - e) / e) <= 3e-8  # the polynomial alone (1e-9, times 2^4 squarings)
    e = np.exp(accuracy.encoded(b, 18))
    assert np.all(np.abs(np.asarray(pade) - e) <= 1e-3 * e + SPU_ATOL)  # a tenth of SPU's rtol 1e-2
    x = jaxmpc.Shared(jax.ShapeDtypeStruct((2, 3), jnp.uint64), FXP)
    assert jaxmpc.cost(approx.exp, jaxmpc.key(1), x, method="taylor", iterations=4).rounds == 14 + 2 * 4
    assert approx.domain("exp", method="taylor", iterations=4) == (-8.0, 8.0)
