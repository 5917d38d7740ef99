"""The Shared pytree, share / reveal on pytrees, plain-integer sharing, and input validation: every
bad input raises the documented jaxmpc error class with a message that says what to do."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc import FixedPoint, Shared
from jaxmpc.core import ring

FXP = FixedPoint(10, 3)


def _keys(seed, n):
    return iter(jax.random.split(jax.random.key(seed), n))


# ---------------------------------------------------------------------------------------------
# structure
@pytest.mark.parametrize("n_parties", [2, 3, 5])
def test_share_pytree_round_trip(n_parties):
    """share / reveal keep any pytree structure; each leaf within 0.5 unit; party axis first."""
    tree = {"w": np.array([[0.0738, -0.2109], [-0.1579, 0.3174]]), "b": [np.array(0.1), np.zeros((0,))],
            "t": (np.array([-1.99999, 2.5]),)}
    shared = jaxmpc.share(jax.random.key(n_parties), tree, FXP, n_parties=n_parties)
    assert jax.tree_util.tree_structure(jax.tree_util.tree_map(lambda s: 0, shared, is_leaf=lambda v: isinstance(v, Shared))) \
        == jax.tree_util.tree_structure(jax.tree_util.tree_map(lambda s: 0, tree))
    assert shared["w"].shares.shape == (n_parties, 2, 2) and shared["w"].shares.dtype == jnp.uint64
    assert shared["b"][0].shares.shape == (n_parties,)
    out = jaxmpc.reveal(shared)
    for got, want in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(tree)):
        assert got.shape == np.shape(want) and got.dtype == jnp.float64
        assert np.all(np.abs(np.asarray(got) - want) * 1e3 <= 0.5 + 1e-9)


def test_share_nested_list_is_one_array():
    x = jaxmpc.share(jax.random.key(0), [[1.0, 2.0], [3.0, 4.5]], FXP)
    assert isinstance(x, Shared) and x.shape == (2, 2)
    np.testing.assert_array_equal(np.asarray(jaxmpc.reveal(x)), [[1.0, 2.0], [3.0, 4.5]])


def test_share_and_reveal_under_jit():
    f = jax.jit(lambda k, t: jaxmpc.reveal(jaxmpc.share(k, t, FXP, n_parties=3)))
    out = f(jax.random.key(1), {"a": jnp.array([1.25, -3.5]), "b": jnp.array(-0.001)})
    np.testing.assert_array_equal(np.asarray(out["a"]), [1.25, -3.5])
    assert float(out["b"]) == -0.001


def test_shared_attributes_and_pytree():
    x = jaxmpc.share(jax.random.key(2), np.ones((2, 3, 4)), FXP, n_parties=3)
    assert (x.n_parties, x.shape, x.ndim, x.size) == (3, (2, 3, 4), 3, 24)
    assert "n_parties=3" in repr(x) and "precision=3" in repr(x)
    leaves = jax.tree_util.tree_leaves(x)
    assert leaves[0] is x.shares  # the shares leaf, then the encoding's precision bits
    y = jax.tree_util.tree_map(lambda v: v, x)
    assert isinstance(y, Shared) and y.fxp.base == 10
    s = jaxmpc.share(jax.random.key(3), 2.0, FXP)
    assert (s.shape, s.ndim, s.size) == ((), 0, 1)
    e = jaxmpc.share(jax.random.key(4), np.zeros((2, 0)), FXP)
    assert (e.shape, e.size) == ((2, 0), 0)


def test_reveal_is_a_party_sum_then_decode():
    x = jaxmpc.share(jax.random.key(5), np.array([1.5, -2.25]), FXP, n_parties=5)
    raw = ring.to_signed(ring.party_sum(x.shares))
    assert np.asarray(raw).tolist() == [1500, -2250]
    # any single party's shares alone decode to garbage, not to the secret
    assert not np.allclose(np.asarray(FXP.decode(x.shares[0])), [1.5, -2.25], atol=1.0)


@pytest.mark.parametrize("n_parties", [2, 3])
def test_plain_integer_sharing(n_parties):
    """fxp=None shares integers as ring elements: exact; a 0/1 bit times a fixed-point value needs no
    truncation, so the product is exact (bit for bit)."""
    k = _keys(10 + n_parties, 4)
    ints = jaxmpc.share(next(k), np.array([-3, 0, 7, -(2**40)]), None, n_parties=n_parties)
    got = jaxmpc.reveal(ints)
    assert got.dtype == jnp.int64 and np.asarray(got).tolist() == [-3, 0, 7, -(2**40)]
    assert np.asarray(jaxmpc.reveal(ints * -2 + 5)).tolist() == [11, 5, -9, 2**41 + 5]
    bits = jaxmpc.share(next(k), np.array([1, 0, 1, 1]), None, n_parties=n_parties)
    x = jaxmpc.share(next(k), np.array([-1.99999, 2.5, 3.0, -0.001]), FXP, n_parties=n_parties)
    z = jaxmpc.mul(next(k), x, bits)
    assert z.fxp is FXP or z.fxp.concrete_precision() == 3
    np.testing.assert_array_equal(np.asarray(ring.to_signed(ring.party_sum(z.shares))), [-2000, 0, 3000, -1])


def test_empty_pytree_and_none():
    assert jaxmpc.share(jax.random.key(6), {}, FXP) == {}
    with pytest.raises(jaxmpc.InputTypeError, match="None"):
        jaxmpc.share(jax.random.key(7), None, FXP)


# ---------------------------------------------------------------------------------------------
# errors: values
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_rejected(bad):
    k = _keys(20, 4)
    with pytest.raises(jaxmpc.EncodingError, match="NaN or infinite"):
        jaxmpc.share(next(k), np.array([1.0, bad]), FXP)
    x = jaxmpc.share(next(k), np.array([1.0, 2.0]), FXP)
    with pytest.raises(jaxmpc.EncodingError, match="NaN or infinite"):
        x + np.array([0.0, bad])
    with pytest.raises(jaxmpc.EncodingError, match="NaN or infinite"):
        jaxmpc.mul_public(next(k), x, bad)


def test_too_large_rejected():
    k = _keys(21, 4)
    with pytest.raises(jaxmpc.EncodingError, match=r"x has magnitude .* Rescale"):
        jaxmpc.share(next(k), np.array([1.0, 1e13]), FXP)  # 1e13 * 1e6 > 2^62
    jaxmpc.share(next(k), np.array([1.0, 1e12]), FXP)
    with pytest.raises(jaxmpc.EncodingError, match=r"x \(leaf 2\)"):
        jaxmpc.share(next(k), [np.ones(2), np.array([5.0]), np.array([1e300])], FXP)
    with pytest.raises(jaxmpc.EncodingError):
        jaxmpc.share(next(k), np.array([5e4]), FixedPoint(10, 7))  # 5e4 * 1e14 > 2^62


@pytest.mark.parametrize("bad", [np.array([True, False]), np.array(["1.0", "2.0"]), "1.5",
                                 np.array([1 + 1j])])
def test_non_numeric_rejected(bad):
    k = _keys(22, 3)
    with pytest.raises(jaxmpc.InputTypeError, match="x must be a real numeric array|numeric"):
        jaxmpc.share(next(k), bad, FXP)
    x = jaxmpc.share(next(k), np.array([1.0, 2.0]), FXP)
    with pytest.raises(jaxmpc.InputTypeError):
        x + bad


def test_plain_integer_sharing_rejects_floats():
    with pytest.raises(jaxmpc.InputTypeError, match="integers only"):
        jaxmpc.share(jax.random.key(23), np.array([0.5]), None)
    ints = jaxmpc.share(jax.random.key(24), np.array([1, 2]), None)
    with pytest.raises(jaxmpc.InputTypeError, match="integer"):
        ints + 0.5


# ---------------------------------------------------------------------------------------------
# errors: operands that do not fit together
def test_mismatched_party_counts():
    k = _keys(30, 8)
    x2 = jaxmpc.share(next(k), np.ones(3), FXP, n_parties=2)
    x3 = jaxmpc.share(next(k), np.ones(3), FXP, n_parties=3)
    for call in (lambda: x2 + x3, lambda: x3 - x2, lambda: jaxmpc.mul(next(k), x2, x3),
                 lambda: jaxmpc.matmul(next(k), x2, x3), lambda: jaxmpc.concatenate([x2, x3])):
        with pytest.raises(jaxmpc.ShareMismatchError, match="different numbers of parties"):
            call()


@pytest.mark.parametrize("other", [FixedPoint(2, 16), FixedPoint(10, 4), FixedPoint(10, 3, rounding="trunc"), None])
def test_mismatched_encodings(other):
    k = _keys(31, 6)
    x = jaxmpc.share(next(k), np.ones(3), FXP)
    y = jaxmpc.share(next(k), np.ones(3, np.int64) if other is None else np.ones(3), other)
    calls = [lambda: x + y, lambda: y - x, lambda: jaxmpc.concatenate([x, y])]
    if other is not None:  # a plain-integer operand is a legal factor of mul (a 0/1 bit)
        calls.append(lambda: jaxmpc.mul(next(k), x, y))
        calls.append(lambda: jaxmpc.matmul(next(k), x, y))
    for call in calls:
        with pytest.raises(jaxmpc.ShareMismatchError, match="different (encodings|precisions)"):
            call()


def test_incompatible_shapes():
    k = _keys(32, 6)
    a = jaxmpc.share(next(k), np.ones((2, 3)), FXP)
    b = jaxmpc.share(next(k), np.ones((4,)), FXP)
    with pytest.raises(jaxmpc.ShareMismatchError, match="broadcast"):
        a + b
    with pytest.raises(jaxmpc.ShareMismatchError, match="broadcast"):
        a + np.ones(4)
    with pytest.raises(jaxmpc.ShareMismatchError, match="broadcast"):
        jaxmpc.mul(next(k), a, b)
    with pytest.raises(jaxmpc.ShareMismatchError, match="not compatible"):
        jaxmpc.matmul(next(k), a, b)
    with pytest.raises(jaxmpc.ShareMismatchError, match="out of range"):
        a.sum(2)


# ---------------------------------------------------------------------------------------------
# errors: arguments of the wrong kind
@pytest.mark.parametrize("bad_key", [0, None, np.array([0, 1], np.int64), "key",
                                     jax.random.split(jax.random.key(0), 2)])
def test_wrong_key_type(bad_key):
    k = _keys(40, 2)
    x = jaxmpc.share(next(k), np.ones(2), FXP)
    for call in (lambda: jaxmpc.share(bad_key, np.ones(2), FXP), lambda: jaxmpc.mul(bad_key, x, x),
                 lambda: jaxmpc.matmul(bad_key, x, x), lambda: jaxmpc.mul_public(bad_key, x, 0.5),
                 lambda: jaxmpc.div_public(bad_key, x, 3)):
        with pytest.raises(jaxmpc.InputTypeError, match="PRNG key"):
            call()


def test_raw_uint32_key_is_accepted():
    x = jaxmpc.share(jax.random.PRNGKey(3), np.array([1.5]), FXP)
    assert float(jaxmpc.reveal(x)[0]) == 1.5


def test_shared_times_shared_says_what_to_call():
    k = _keys(41, 2)
    x = jaxmpc.share(next(k), np.ones(2), FXP)
    with pytest.raises(TypeError, match=r"jaxmpc\.mul\(key, x, y\)"):
        x * x
    with pytest.raises(TypeError, match=r"jaxmpc\.matmul"):
        x @ x
    with pytest.raises(TypeError, match=r"jaxmpc\.mul_public"):
        x * 0.5
    with pytest.raises(TypeError, match="truth value"):
        bool(x)


@pytest.mark.parametrize("n_parties", [1, 0, True, 2.0, "2"])
def test_bad_party_count(n_parties):
    with pytest.raises(jaxmpc.InputTypeError, match="n_parties"):
        jaxmpc.share(jax.random.key(42), np.ones(2), FXP, n_parties=n_parties)


def test_bad_operands():
    k = _keys(43, 16)
    x = jaxmpc.share(next(k), np.ones(2), FXP)
    ints = jaxmpc.share(next(k), np.ones(2, np.int64), None)
    with pytest.raises(jaxmpc.InputTypeError, match="FixedPoint"):
        jaxmpc.share(next(k), np.ones(2), 3)
    with pytest.raises(jaxmpc.InputTypeError, match="must be a jaxmpc.Shared"):
        jaxmpc.mul(next(k), x, np.ones(2))
    with pytest.raises(jaxmpc.InputTypeError, match="must be a jaxmpc.Shared"):
        jaxmpc.matmul(next(k), np.ones(2), x)
    with pytest.raises(jaxmpc.InputTypeError, match="fixed-point"):
        jaxmpc.mul_public(next(k), ints, 0.5)
    for d in (0, -3, 2.5, True):
        with pytest.raises(jaxmpc.InputTypeError, match="positive"):
            jaxmpc.div_public(next(k), x, d)
    with pytest.raises(jaxmpc.InputTypeError, match="Shared"):
        jaxmpc.reveal(np.ones(2))
    with pytest.raises(jaxmpc.InputTypeError):
        jaxmpc.concatenate([])
    with pytest.raises(jaxmpc.InputTypeError, match="uint64"):
        Shared(jnp.ones((2, 3), jnp.int64), FXP)
    with pytest.raises(jaxmpc.InputTypeError, match="at least 2 parties"):
        Shared(jnp.ones((1, 3), jnp.uint64), FXP)


# ---------------------------------------------------------------------------------------------
# batching shared values (jaxmpc.vmap, jaxmpc.run.batching.axes)
def _row_product(key, r, c):
    """One run: a shared row times a public scale, squared with Beaver, revealed and as a Shared."""
    p = jaxmpc.mul(key, r, r)
    return jaxmpc.reveal(p) * c, p


@pytest.mark.parametrize("n_parties", [2, 3])
def test_vmap_maps_the_first_non_party_axis_like_a_loop(n_parties):
    """jaxmpc.vmap over rows of a shared matrix equals the loop over rows (same keys), bit for bit
    in the result shares, with the party axis kept first and the encoding left alone."""
    v = np.array([[1.5, -2.0], [0.25, 3.0], [-1.0, 0.5]])
    x = jaxmpc.share(jax.random.key(40 + n_parties), v, FXP, n_parties)

    def keys():  # the same three keys each time (each copy consumed once)
        return jax.random.split(jax.random.key(45 + n_parties), 3)

    c = jnp.array([1.0, 2.0, 3.0])
    out, prod = jax.jit(jaxmpc.vmap(_row_product))(keys(), x, c)
    assert prod.shares.shape == (n_parties, 3, 2) and prod.fxp.concrete_precision() == 3
    for i in range(3):
        want, p = jax.jit(_row_product)(keys()[i], x[i], c[i])
        np.testing.assert_array_equal(np.asarray(out[i]), np.asarray(want))
        np.testing.assert_array_equal(np.asarray(prod.shares[:, i]), np.asarray(p.shares))
    np.testing.assert_allclose(np.asarray(jaxmpc.reveal(prod)), v * v, atol=2e-3)
    # the same with jax.vmap and the provided spec; out_axes moves the batch axis of the values
    spec = (0, jaxmpc.run.batching.axes(x), 0)
    out2, prod2 = jax.vmap(_row_product, in_axes=spec, out_axes=(0, jaxmpc.run.batching.axes(prod)))(keys(), x, c)
    np.testing.assert_array_equal(np.asarray(out2), np.asarray(out))
    np.testing.assert_array_equal(np.asarray(prod2.shares), np.asarray(prod.shares))
    cols, pcols = jaxmpc.vmap(_row_product, out_axes=1)(keys(), x, c)
    np.testing.assert_array_equal(np.asarray(cols), np.asarray(out).T)
    np.testing.assert_array_equal(np.asarray(pcols.shares), np.asarray(prod.shares).transpose(0, 2, 1))


def test_vmap_plain_integers_and_other_axes():
    """Plain-integer shares (where jax.vmap(reveal) gave numbers of order 1e18), in_axes per
    argument with None, and a non-leading value axis."""
    x = jaxmpc.share(jax.random.key(50), np.arange(6).reshape(2, 3), None, 3)
    np.testing.assert_array_equal(np.asarray(jaxmpc.vmap(jaxmpc.reveal)(x)), [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(np.asarray(jaxmpc.vmap(jaxmpc.reveal, in_axes=1)(x)), [[0, 3], [1, 4], [2, 5]])
    y = jaxmpc.vmap(lambda a, b: a + b, in_axes=(0, None))(x, x[0])
    np.testing.assert_array_equal(np.asarray(jaxmpc.reveal(y)), [[0, 2, 4], [3, 5, 7]])


def test_vmap_over_precisions_returns_a_batch_of_encodings():
    """A precision swept inside: the output encoding comes back with a batch of precisions in
    front, and reveal decodes each row at its own scale (an out-of-range one as NaN)."""
    def one(key, p):
        return jaxmpc.share(key, jnp.array([1.25, -0.5]), FixedPoint(10, p))

    y = jax.jit(jaxmpc.vmap(one))(jax.random.split(jax.random.key(51), 3), jnp.array([1, 3, 12]))
    assert y.shares.shape == (2, 3, 2) and y.fxp.precision.tolist() == [1, 3, 12]
    out = np.asarray(jaxmpc.reveal(y))
    np.testing.assert_array_equal(out[1], [1.25, -0.5])
    np.testing.assert_allclose(out[0], [1.2, -0.5])  # 12.5 rounds half to even at one digit
    assert np.isnan(out[2]).all()
    with pytest.raises(jaxmpc.ShareMismatchError, match="jaxmpc.vmap"):
        jaxmpc.mul(jax.random.key(52), y, y)  # a protocol needs one precision: compute inside


def test_misuse_of_jax_vmap_is_detected():
    """jax.vmap(f)(x) maps the party axis: a protocol or reveal on the result raises a
    ShareMismatchError that names jaxmpc.vmap (plain integers; fixed point fails in JAX itself)."""
    x = jaxmpc.share(jax.random.key(53), np.arange(6).reshape(3, 2), None)
    with pytest.raises(jaxmpc.ShareMismatchError, match="jaxmpc.vmap"):
        jax.vmap(jaxmpc.reveal)(x)
    with pytest.raises(jaxmpc.ShareMismatchError, match="party axis"):
        jax.vmap(lambda s: jaxmpc.mul(jax.random.key(54), s, s))(x)
    z = jaxmpc.share(jax.random.key(55), np.ones(4, np.int64), None)  # the batch of 4 maps the shares to rank 0
    with pytest.raises(jaxmpc.ShareMismatchError, match="party axis"):
        jax.vmap(jaxmpc.reveal)(z)
    with pytest.raises(jaxmpc.ShareMismatchError, match="scalar"):
        jaxmpc.vmap(jaxmpc.reveal)(jaxmpc.share(jax.random.key(56), 1.0, FXP))
    with pytest.raises(jaxmpc.InputTypeError, match="in_axes"):
        jaxmpc.vmap(jaxmpc.reveal, in_axes=(0, 0))(x)
