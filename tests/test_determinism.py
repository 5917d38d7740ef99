"""Determinism: the same keys give bit-identical shares (and diagnostics) with and without jit, and
from one call to the next.

The chain covers Beaver matmul and mul, both truncations, the comparison circuit of ReLU (its
Kogge-Stone levels run in an accounting.scan) and a public division. Everything in the ring is
integer arithmetic, and the float64 GEMM of opened values (gemm.matmul_small) is exact, so nothing
may depend on XLA's fusion or evaluation order.
"""
import jax
import jax.numpy as jnp
import numpy as np

import jaxmpc
from jaxmpc import diagnostics

# one shape throughout: running without jit compiles every primitive once per shape
X = np.array([[0.5, -1.25], [3.0, 0.125]])
W = np.array([[1.5, -0.5], [0.25, 2.0]])


def _chain(key, x, w):
    fxp = jaxmpc.FixedPoint(10, 4)
    k = jax.random.split(key, 6)
    xs, ws = jaxmpc.share(k[0], x, fxp), jaxmpc.share(k[1], w, fxp)
    h = jaxmpc.matmul(k[2], xs, ws, truncation="local")
    p = jaxmpc.mul(k[3], h, h)
    r, _ = jaxmpc.relu(k[4], p - 1.0)  # (relu, its 0/1 bit)
    t = jaxmpc.div_public(k[5], r, 3)
    return {"h": h.shares, "p": p.shares, "r": r.shares, "t": t.shares}, jaxmpc.reveal(t)


def test_jit_and_no_jit_are_bit_identical():
    run = diagnostics.run(_chain)
    fast = jax.jit(run)
    (shares, value), rep = fast(jaxmpc.key(5), X, W)
    (again, _), rep_again = fast(jaxmpc.key(5), X, W)  # a second call: the same bits
    with jax.disable_jit():
        (slow, slow_value), rep_slow = run(jaxmpc.key(5), X, W)
    (other, _), _ = fast(jaxmpc.key(6), X, W)
    for name in shares:
        a = np.asarray(shares[name])
        assert a.dtype == np.uint64
        np.testing.assert_array_equal(a, np.asarray(again[name]), err_msg=name)
        np.testing.assert_array_equal(a, np.asarray(slow[name]), err_msg=name)
        assert not np.array_equal(a, np.asarray(other[name]))  # the keys do matter
    # the diagnostics too, and they are clean
    assert rep.names() == rep_slow.names() == rep_again.names()
    for name in rep.names():
        for field, v in rep[name]._asdict().items():
            np.testing.assert_array_equal(np.asarray(v), np.asarray(getattr(rep_slow[name], field)),
                                          err_msg=f"{name}.{field}")
    assert bool(rep.ok)
    # and the result is right: relu(((x @ w))^2 - 1) / 3 within a few units of 1e-4
    want = np.maximum((X @ W) ** 2 - 1.0, 0.0) / 3
    np.testing.assert_allclose(np.asarray(value), want, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(value), np.asarray(slow_value))
