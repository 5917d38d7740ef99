"""jaxmpc.ops.reduce: mean, var, floor, ceil, outer, polyval against their JAX twins (the
encoded inputs through jnp.mean / jnp.var / jnp.floor / jnp.ceil / jnp.outer / jnp.polyval), at 2
and 3 parties, under jit and vmap. One compiled function per party count."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc.errors import InputTypeError, ShareMismatchError
from jaxmpc.ops import reduce

FXP = jaxmpc.FixedPoint(2, 16)
UNIT = 2.0 ** -16
COEFFS = (0.5, -1.0, 2.0, 0.25, -3.0)  # degree 4: two doubling rounds
RNG = np.random.default_rng(0)
X = np.round(RNG.normal(size=(3, 4)) * 4, 3)
EDGES = np.array([-2.0, -1.5, -1.0, -UNIT, 0.0, UNIT, 0.5, 1.0 - UNIT, 1.0, 2.5, 1000.25, -1000.25])
U, V = RNG.normal(size=(3,)), RNG.normal(size=(4,))


@functools.cache
def _suite(n: int):
    @jax.jit
    @jax.vmap
    def run(key):
        k = jax.random.split(key, 12)
        x, e = jaxmpc.share(k[0], X, FXP, n), jaxmpc.share(k[1], EDGES, FXP, n)
        u, v = jaxmpc.share(k[2], U, FXP, n), jaxmpc.share(k[3], V, FXP, n)
        out = {"mean": reduce.mean(k[4], x), "mean0": reduce.mean(k[5], x, axis=0),
               "mean_k": reduce.mean(k[6], x, axis=(-1,), keepdims=True), "var1": reduce.var(k[7], x, axis=1),
               "floor": reduce.floor(k[8], e), "ceil": reduce.ceil(k[9], e), "outer": reduce.outer(k[10], u, v),
               "polyval": reduce.polyval(k[11], COEFFS, e[:9])}
        return {name: jaxmpc.reveal(s) for name, s in out.items()}
    return run


def _enc(v):
    return np.round(np.asarray(v) / UNIT) * UNIT


@pytest.mark.parametrize("n", [2, 3])
def test_against_the_jax_twins(n):
    got = jax.tree_util.tree_map(np.asarray, _suite(n)(jax.random.split(jaxmpc.key(n), 3)))
    x, e, u, v = _enc(X), _enc(EDGES), _enc(U), _enc(V)
    want = {"mean": jnp.mean(x), "mean0": jnp.mean(x, axis=0), "mean_k": jnp.mean(x, axis=-1, keepdims=True),
            "var1": jnp.var(x, axis=1), "floor": jnp.floor(e), "ceil": jnp.ceil(e), "outer": jnp.outer(u, v),
            "polyval": jnp.polyval(jnp.asarray(COEFFS), e[:9])}
    # units: one truncation (mean, outer); var: the mean's error cancels to first order (sum of
    # deviations is 0), leaving the product's and the final mean's; polyval: 2 units times
    # sum_i |c_i| i |x|^(i-1) at |x| <= 2.5 (about 60)
    bound = {"mean": 1, "mean0": 1, "mean_k": 1, "var1": 2, "floor": 0, "ceil": 0, "outer": 1, "polyval": 120}
    for name, w in want.items():
        err = np.max(np.abs(got[name] - np.asarray(w)[None])) / UNIT
        assert got[name].shape == (3,) + np.shape(w), name
        assert err <= bound[name], f"{name}: {err:.1f} units from the twin (bound {bound[name]})"


def test_bad_input():
    k = jaxmpc.key(0)
    x = jaxmpc.share(jaxmpc.key(1), np.ones((2, 3)), FXP)
    xi = jaxmpc.share(jaxmpc.key(2), np.ones(3, np.int64), None)
    with pytest.raises(InputTypeError, match="mean: x must be a fixed-point jaxmpc.Shared, got a plain-integer"):
        reduce.mean(k, xi)
    with pytest.raises(InputTypeError, match="floor: x must be a fixed-point"):
        reduce.floor(k, np.ones(3))
    with pytest.raises(ShareMismatchError, match="axis 2 is out of range"):
        reduce.var(k, x, axis=2)
    with pytest.raises(InputTypeError, match="coeffs must be a non-empty 1-d"):
        reduce.polyval(k, [], x)
    with pytest.raises(InputTypeError, match="y must be a jaxmpc.Shared"):
        reduce.outer(k, x, np.ones(3))


P_X = np.array([-1.5, -0.75, 0.0, 0.5, 1.25, 2.0])
DROP_P = 0.25


@functools.cache
def _power_norm_dropout():
    """One program (2 parties): power for k = 0..5, norm over all axes and over one, dropout."""
    @jax.jit
    def run(key):
        k = jax.random.split(key, 12)
        p, x = jaxmpc.share(k[0], P_X, FXP), jaxmpc.share(k[1], X, FXP)
        out = {f"pow{j}": reduce.power(k[2 + j], p, j) for j in range(6)}
        out["norm"] = reduce.norm(k[8], x)
        out["norm1"] = reduce.norm(k[9], x, axis=1, keepdims=True)
        y, mask = reduce.dropout(k[10], x, DROP_P, jax.random.key(7))
        out["dropout"] = y
        return {name: jaxmpc.reveal(s) for name, s in out.items()}, mask
    return run(jaxmpc.key(5))


@pytest.mark.parametrize("j", range(6))
def test_power_matches_jnp_power(j):
    out, _ = _power_norm_dropout()
    want = np.power(_enc(P_X), j)
    # each product's truncation (1 unit) amplified by the later factors, about j |x|^(j-1)
    assert np.all(np.abs(np.asarray(out[f"pow{j}"]) - want) <= (4 * j * 2.0 ** j + 1) * UNIT)


def test_norm_matches_jnp():
    out, _ = _power_norm_dropout()
    x = _enc(X)
    for name, want in (("norm", jnp.sqrt(jnp.sum(x ** 2))),
                       ("norm1", jnp.sqrt(jnp.sum(x ** 2, axis=1, keepdims=True)))):
        assert out[name].shape == want.shape
        assert np.all(np.abs(np.asarray(out[name]) - want) <= 3e-4 * np.maximum(1.0, np.abs(want)))


def test_dropout_public_mask_and_twin():
    out, mask = _power_norm_dropout()
    np.testing.assert_array_equal(mask, reduce.dropout_mask(jax.random.key(7), DROP_P, X.shape))
    assert 0 < int(mask.sum()) < mask.size
    want = reduce.dropout_plain(_enc(X), DROP_P, jax.random.key(7))
    assert np.all(np.abs(np.asarray(out["dropout"]) - want) <= 2 * UNIT)


def test_power_and_dropout_reject_bad_arguments():
    x = jaxmpc.share(jaxmpc.key(0), P_X, FXP)
    with pytest.raises(InputTypeError, match="k must be a Python int >= 0"):
        reduce.power(jaxmpc.key(1), x, 0.5)
    with pytest.raises(InputTypeError, match=r"p must be a Python float in \[0, 1\)"):
        reduce.dropout(jaxmpc.key(2), x, 1.0, jaxmpc.key(3))
