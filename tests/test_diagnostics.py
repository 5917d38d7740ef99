"""jaxmpc.trace.diagnostics: nothing traced when off; exact counts on crafted inputs against a ground truth
computed here from the opened results; jit, vmap, eager and accounting.scan loops; 2, 3, 5 parties."""
import contextlib
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc import diagnostics
from jaxmpc.trace import accounting
from jaxmpc.core import ring
from jaxmpc.ops import approx

FXP = jaxmpc.FixedPoint(10, 4)
S = 10**4
# shared values: 4e5 squared at scale 1e4 is 1.6e19 > 2^63 (wraps); the others are small
X = np.array([1.5, 4e5, -2.0, 0.0])
# matmul (2x2 @ 2x2): entry [1, 1] sums 3e5 * 2e5 + 1e5 * 1e5 = 7e10 -> 7e18 at scale 1e8: no wrap,
# but above 2^62 (out of range); entry [0, 0] wraps (4e5 * 3e5 -> 1.2e19)
A = np.array([[4e5, 0.5], [3e5, 1e5]])
B = np.array([[3e5, 0.25], [-1.0, 2e5]])
# truncation inputs (raw ring values): beyond the dealer protocol's range (fails with probability
# ~(|x| - 2^62) / 2^63), just inside it (never fails), and below one unit (underflow)
TRUNC_D = 10**4
TRUNC_X = [3 << 61, -(3 << 61), (1 << 63) - 1, -(1 << 63), (1 << 62) - (1 << 20), 123, -9999, 0, -(1 << 40)]
LOCAL_X = 1 << 61  # local truncation fails with probability (2^61 + 1) / 2^64 ~ 1/8 per element
LOCAL_D = 1 << 16
LOCAL_N = 2048


def _crafted(key, n_parties: int):
    """The protocol calls under test; returns the opened values the ground truth is computed from."""
    k = jax.random.split(key, 9)
    x = jaxmpc.share(k[0], X, FXP, n_parties)
    p = jaxmpc.mul(k[3], x, x)
    v = ring.from_signed(jnp.asarray(TRUNC_X, jnp.int64))
    t = jaxmpc.truncate_shares(k[6], ring.share_value(k[5], v, n_parties), TRUNC_D)
    out = {"mul": p.shares, "trunc": t}
    if n_parties == 2:  # (keeps the compile time of the other party counts down)
        a, b = jaxmpc.share(k[1], A, FXP, n_parties), jaxmpc.share(k[2], B, FXP, n_parties)
        out["matmul"] = jaxmpc.matmul(k[4], a, b).shares
        v = ring.from_signed(jnp.full((LOCAL_N,), LOCAL_X, jnp.int64))
        out["local"] = jaxmpc.truncate_shares(k[7], ring.share_value(k[8], v, 2),
                                              LOCAL_D, "local")
    return {name: ring.to_signed(ring.party_sum(s)) for name, s in out.items()}


@functools.lru_cache(maxsize=None)
def _crafted_jit(n_parties: int):
    return jax.jit(diagnostics.run(functools.partial(_crafted, n_parties=n_parties)))


def _failures(y, xs, d) -> np.ndarray:
    """Ground truth: opened quotient y differs from floor(x / d) by more than the protocols allow."""
    off = np.asarray(y, np.int64) - np.array([x // d for x in xs], np.int64)
    return (off < -1) | (off > 2)


@pytest.mark.parametrize("n_parties", [2, 3, 5])
def test_crafted_counts(n_parties):
    opened, rep = _crafted_jit(n_parties)(jax.random.key(100 + n_parties))
    opened = jax.tree_util.tree_map(np.asarray, opened)
    c = {name: jax.tree_util.tree_map(lambda a: np.asarray(a).item(), rep[name]) for name in rep.names()}
    expected = ["share", "mul", "mul/truncate/dealer", "truncate/dealer"]
    if n_parties == 2:
        expected += ["share", "matmul", "matmul/truncate/dealer", "truncate/local"]
    assert rep.names() == list(dict.fromkeys(expected))
    # sharing: 1 call (3 with a, b), 4 (12) elements, nothing out of range (|x| s^2 < 2^62 for all)
    calls = 3 if n_parties == 2 else 1
    assert (c["share"].calls, c["share"].elements) == (calls, 4 * calls)
    assert c["share"].wraps == c["share"].out_of_range == c["share"].underflows == 0
    # mul: exactly one element wraps; its (wrapped) ring value is in range for the truncation
    assert (c["mul"].wraps, c["mul"].first_bad, c["mul"].elements) == (1, 0, 4)
    assert c["mul"].max_abs == pytest.approx((4e5 * S) ** 2)
    assert c["mul/truncate/dealer"].failures == 0
    # dealer truncation: failures equal the ground truth; out of range exactly the four values
    # beyond 2^62 - d; underflow exactly 123 and -9999 (0 is not an underflow)
    fail = _failures(opened["trunc"], TRUNC_X, TRUNC_D)
    assert not fail[4:].any()  # inside the range: never
    t = c["truncate/dealer"]
    assert (t.failures, t.out_of_range, t.underflows, t.elements) == (fail.sum(), 4, 2, len(TRUNC_X))
    assert t.first_bad == (0 if fail.any() else -1) and t.max_abs == 2.0**63
    assert not bool(rep.ok)
    if n_parties == 2:
        # matmul: [0, 0] wraps; [1, 1] is out of range (>= 2^62) without wrapping
        assert (c["matmul"].wraps, c["matmul"].out_of_range, c["matmul"].elements) == (1, 2, 4)
        # the result is right where nothing wrapped (so no float error fools the checker)
        np.testing.assert_allclose(opened["matmul"][0, 1] / S, (A @ B)[0, 1], atol=2e-4)
        fail = _failures(opened["local"], [LOCAL_X] * LOCAL_N, LOCAL_D)
        assert c["truncate/local"].failures == fail.sum()
        p = (LOCAL_X + 1) / 2.0**64
        mean, sd = LOCAL_N * p, math.sqrt(LOCAL_N * p * (1 - p))
        assert abs(fail.sum() - mean) < 6 * sd, (fail.sum(), mean)
        # a failure is off by 2^64 / d, the others by at most one unit
        off = opened["local"] - LOCAL_X // LOCAL_D
        np.testing.assert_array_equal(np.abs(off[fail]), 1 << 48)
        assert set(np.unique(off[~fail])) <= {0, 1}


def _doubling(key, x0, steps: int = 30):
    """x doubles every step (a local op); each step squares it with Beaver: at base 10 precision 3,
    (2^t * 1000)^2 >= 2^63 from t = 22 on (t = 21 for x0 = 2)."""
    fxp = jaxmpc.FixedPoint(10, 3)
    k_share, k_loop = jax.random.split(key)
    x = jaxmpc.share(k_share, x0, fxp)

    def body(carry, _):
        k, x = carry
        k, k_mul = jax.random.split(k)
        return (k, x + x), jaxmpc.reveal(jaxmpc.mul(k_mul, x, x))

    return accounting.scan(body, (k_loop, x), None, length=steps)[1]


def test_scan_aggregates_steps_under_jit_and_vmap():
    fn = jax.jit(jax.vmap(diagnostics.run(_doubling)))
    ys, rep = fn(jax.random.split(jax.random.key(7), 2), jnp.array([1.0, 2.0]))
    assert ys.shape == (2, 30)
    s = rep["mul"]
    np.testing.assert_array_equal(s.calls, [30, 30])
    np.testing.assert_array_equal(s.elements, [30, 30])
    np.testing.assert_array_equal(s.first_bad, [22, 21])
    np.testing.assert_array_equal(s.wraps, [8, 9])
    np.testing.assert_array_equal(s.out_of_range, [8, 9])  # 2^61.9 at t = 21: just inside
    assert np.all(np.asarray(rep["share"].calls) == 1)  # outside the loop: once
    # before the first wrap the products are right
    np.testing.assert_allclose(ys[0, :22], 4.0 ** np.arange(22), atol=2e-3)
    d = rep.to_dict()
    assert d["runs"] == 2 and d["calls"]["mul"]["wraps"] == 17 and d["calls"]["mul"]["first_bad"] == 21
    text = rep.summary()
    assert "2 runs" in text and "mul/truncate/dealer" in text and "FAILED" in text


def test_per_step_diagnostics():
    ys, rep = jax.jit(diagnostics.run(_doubling, per_step=True))(jax.random.key(8), jnp.ones(()))
    assert set(rep.stepped) == {"mul", "mul/truncate/dealer"} and rep.runs() == 1
    s = rep["mul"]
    np.testing.assert_array_equal(s.wraps, np.arange(30) >= 22)
    np.testing.assert_array_equal(s.first_bad, np.where(np.arange(30) >= 22, np.arange(30), -1))
    np.testing.assert_array_equal(s.calls, np.ones(30))
    np.testing.assert_allclose(s.max_abs, (2.0 ** np.arange(30) * 1000) ** 2)
    assert int(rep["share"].calls) == 1  # outside the loop: no step axis
    early, late = rep.window(0, 22), rep.window(20, 30)
    assert "share" not in early and int(early["mul"].wraps) == 0 and int(early["mul"].first_bad) == -1
    assert int(late["mul"].wraps) == 8 and int(late["mul"].first_bad) == 22
    assert rep.to_dict()["calls"]["mul"]["first_bad"] == 22 and not bool(rep.ok)


def test_costs_and_diagnostics_compose():
    """accounting.cost of a diagnosed loop still counts every step (both wrap the scan body)."""
    key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype)
    plain = jaxmpc.cost(_doubling, key, jnp.ones(()))
    diag = jaxmpc.cost(diagnostics.run(_doubling), key, jnp.ones(()))
    assert plain.rounds == diag.rounds == 30 * 3  # Beaver, truncation and reveal per step
    assert plain.ops["mul"].calls == diag.ops["mul"].calls == 30


def test_hooks_trace_nothing_when_off(monkeypatch):
    """With no collection the jaxpr of protocol code is the one without any hooks, op for op; with a
    collection the hooks add equations (so this comparison can fail)."""
    def fn(key, x0):
        k = jax.random.split(key, 5)
        out = _doubling(k[4], x0, steps=3)
        a = jaxmpc.share(k[0], jnp.ones((2, 2)), FXP)
        m = jaxmpc.matmul(k[1], a, a, truncation="local")
        opt = jaxmpc.nn.optim.sgd(0.1, key=k[3])
        return out, jaxmpc.reveal(jaxmpc.relu(k[2], m)), jaxmpc.reveal(opt.update({"w": m}, opt.init({"w": m}))[0])

    args = (jax.random.key(0), jnp.ones(()))
    with_hooks = jax.make_jaxpr(fn)(*args)
    assert not diagnostics.active()
    monkeypatch.setattr(diagnostics, "observe_product", lambda *a, **k: None)
    monkeypatch.setattr(diagnostics, "observe_truncation", lambda *a, **k: None)
    monkeypatch.setattr(diagnostics, "observe_encoding", lambda *a, **k: None)
    monkeypatch.setattr(diagnostics, "label", lambda name: contextlib.nullcontext())
    monkeypatch.setattr(diagnostics, "scan_body", lambda f: (f, lambda out: out))
    without = jax.make_jaxpr(fn)(*args)
    assert str(with_hooks) == str(without)
    monkeypatch.undo()
    on = jax.make_jaxpr(diagnostics.run(fn))(*args)
    assert len(on.eqns) > len(with_hooks.eqns)


def test_nested_transformation_is_refused():
    def f(key, v):
        k0, k1 = jax.random.split(key)
        x = jaxmpc.share(k0, v, FXP)
        return jaxmpc.reveal(jaxmpc.mul(k1, x, x))

    key = jax.random.key(3)
    with pytest.raises(jaxmpc.ProtocolError, match="nested"):
        diagnostics.run(jax.jit(f))(key, jnp.ones(2))
    with pytest.raises(jaxmpc.ProtocolError, match="outside"):
        diagnostics.run(jax.vmap(f))(jax.random.split(key, 2), jnp.ones((2, 2)))
    assert not diagnostics.active()  # the collection ended despite the error


def test_unregistered_ring_map_is_refused():
    """A bilinear map that only computes on the ring is refused, not checked silently wrong; with
    its float twin registered (also through functools.partial) it is checked."""
    def ring_only(a, b, *, scale=1):
        return a.astype(jnp.uint64) * b.astype(jnp.uint64) * jnp.uint64(scale)

    k = jax.random.split(jax.random.key(4), 3)
    x = jaxmpc.share(k[0], [1.0, 4e5], FXP)
    y = jaxmpc.share(k[1], [2.0, 4e5], FXP)
    z = ring.share_value(k[2], ring.party_sum(x.shares) * ring.party_sum(y.shares), 2)
    with diagnostics.collecting() as report:
        with pytest.raises(jaxmpc.ProtocolError, match="register_float_twin"):
            diagnostics.observe_product("ring_only", x.shares, y.shares, z, ring_only)
        diagnostics.register_float_twin(ring_only, lambda a, b, *, scale=1: a * b * scale)
        diagnostics.observe_product("ring_only", x.shares, y.shares, z, functools.partial(ring_only, scale=1))
    assert int(report()["ring_only"].wraps) == 1


def test_precision_mismatch_under_jit_is_counted():
    """Precisions traced under jit cannot be compared while tracing (x + y then decodes at the wrong
    scale); the diagnostics count the mismatch as a failure, and a match as none."""
    k = jax.random.split(jax.random.key(31), 3)
    x = jaxmpc.share(k[0], [1.0], jaxmpc.FixedPoint(10, 3))
    y = jaxmpc.share(k[1], [1.0], jaxmpc.FixedPoint(10, 5))
    z = jaxmpc.share(k[2], [1.0], jaxmpc.FixedPoint(10, 3))
    run = jax.jit(diagnostics.run(lambda a, b: jaxmpc.reveal(a + b)))
    _, bad = run(x, y)
    assert int(bad["precision match"].failures) == 1 and not bool(bad.ok)
    out, good = run(x, z)
    assert int(good["precision match"].failures) == 0 and bool(good.ok)
    np.testing.assert_allclose(np.asarray(out), [2.0])


def test_out_of_range_precisions_under_vmap_are_failures():
    """Traced precisions 10, 256 and 259 (base 10 allows 0..9) used to compute x * x = 0.036, or to
    wrap silently to precisions 0 and 3, with report.ok true; now each such run is a failure under
    "precision range" and reveals NaN, while the valid run (4) is exact."""
    def f(key, p):
        k0, k1 = jax.random.split(key)
        x = jaxmpc.share(k0, jnp.array([1.5, -0.5]), jaxmpc.FixedPoint(10, p))
        return jaxmpc.reveal(jaxmpc.mul(k1, x, x))

    ps = jnp.array([4, 10, 256, 259])
    out, rep = jax.jit(jax.vmap(diagnostics.run(f)))(jax.random.split(jax.random.key(41), 4), ps)
    out = np.asarray(out)
    np.testing.assert_allclose(out[0], [2.25, 0.25], atol=2e-4)
    assert np.isnan(out[1:]).all()
    s = rep["precision range"]
    assert np.asarray(s.failures).tolist() == [0, 1, 1, 1] and np.asarray(s.calls).tolist() == [1] * 4
    assert np.asarray(rep.ok).tolist() == [True, False, False, False]
    assert rep.to_dict()["calls"]["precision range"]["failures"] == 3 and "FAILED" in rep.summary()
    assert int(rep["mul"].wraps.sum()) == 0  # the bad runs compute at scale 1, nothing wraps


# ---- approximation domains --------------------------------------------------------------------------
FXP2 = jaxmpc.FixedPoint(2, 16)
# per run: inputs of exp, rsqrt, divide's y and softmax (rows of 3); run 0 lies in every domain
# (edges included), run 1 has elements outside (exp(15) and rsqrt(200) among them)
EXP_RUNS = np.array([[-256.0, -8.0, 0.0, 3.9, 4.0, 2.5],
                     [15.0, -300.0, 0.0, 4.5, 4.0, -256.5]])
RSQRT_RUNS = np.array([[0.1, 1.0, 150.0, 42.0], [200.0, 0.05, 1.0, 150.5]])
DIV_Y_RUNS = np.array([[0.05, 200.0, 3.0], [0.04, 250.0, 3.0]])
SOFTMAX_RUNS = np.array([[[0.0, -1.0, -256.0], [5.0, 5.0, 4.0]],
                         [[0.0, -1.0, -300.0], [5.0, -260.0, -252.0]]])


def _outside(name, v, **static):
    low, high = approx.domain(name, **static)
    return int(np.sum((v < low) | (v > high)))


def _approximations(key, ex, rx, dy, sx):
    k = jax.random.split(key, 9)
    x, r = jaxmpc.share(k[0], ex, FXP2), jaxmpc.share(k[1], rx, FXP2)
    d, y = jaxmpc.share(k[2], jnp.ones_like(dy), FXP2), jaxmpc.share(k[3], dy, FXP2)
    s = jaxmpc.share(k[4], sx, FXP2)
    return (jaxmpc.reveal(jaxmpc.exp(k[5], x)), jaxmpc.reveal(jaxmpc.rsqrt(k[6], r, range="narrow")),
            jaxmpc.reveal(jaxmpc.divide(k[7], d, y, range="narrow")), jaxmpc.reveal(jaxmpc.softmax(k[8], s)))


def test_inputs_outside_the_domains_are_counted_under_jit_and_vmap():
    """Each approximation's entry counts exactly the inputs outside its documented domain (the
    softmax: the differences to the row max, then the row sums); an in-domain run is ok with zero
    counts, the other is not ok. The approximations called inside (rsqrt's exp) are not counted."""
    fn = jax.jit(jax.vmap(diagnostics.run(_approximations)))
    out, rep = fn(jax.random.split(jax.random.key(51), 2), EXP_RUNS, RSQRT_RUNS, DIV_Y_RUNS, SOFTMAX_RUNS)
    spread = SOFTMAX_RUNS - SOFTMAX_RUNS.max(-1, keepdims=True)
    expected = {"exp": [_outside("exp", v) for v in EXP_RUNS],
                "rsqrt": [_outside("rsqrt", v, range="narrow") for v in RSQRT_RUNS],
                "divide": [_outside("divide", v, range="narrow") for v in DIV_Y_RUNS],
                "softmax": [_outside("softmax", v) for v in spread]}
    assert expected == {"exp": [0, 4], "rsqrt": [0, 3], "divide": [0, 2], "softmax": [0, 3]}
    for name, counts in expected.items():
        assert np.asarray(rep[name].out_of_domain).tolist() == counts, name
        assert np.asarray(rep[name].calls).tolist() == [1 + (name == "softmax")] * 2, name  # rows: a 2nd call
    assert np.asarray(rep["exp"].elements).tolist() == [6, 6]
    assert np.asarray(rep["softmax"].elements).tolist() == [6 + 2] * 2  # the elements, then the row sums
    assert "reciprocal" not in rep and "sigmoid" not in rep  # only the calls made by the caller
    assert np.asarray(rep.ok).tolist() == [True, False]
    assert rep.to_dict()["calls"]["rsqrt"]["out_of_domain"] == 3
    assert "out of domain" in rep.summary() and "FAILED" in rep.summary()
    # the in-domain run is right; the counted garbage: rsqrt(200) is far off
    ex, rs = np.asarray(out[0]), np.asarray(out[1])
    np.testing.assert_allclose(ex[0], np.exp(EXP_RUNS[0]), rtol=0.05, atol=1e-3)
    np.testing.assert_allclose(rs[0], 1 / np.sqrt(RSQRT_RUNS[0]), rtol=2e-3)
    assert abs(rs[1, 0] * np.sqrt(200.0) - 1) > 0.1


def test_domains_under_jaxmpc_vmap():
    """jaxmpc.vmap over the rows of one shared value: one count per row."""
    def row(key, x):
        return jaxmpc.reveal(jaxmpc.exp(key, x))

    k0, k1 = jax.random.split(jax.random.key(52))
    x = jaxmpc.share(k0, EXP_RUNS, FXP2)
    _, rep = jax.jit(jaxmpc.vmap(diagnostics.run(row)))(jax.random.split(k1, 2), x)
    assert np.asarray(rep["exp"].out_of_domain).tolist() == [0, 4]
    assert np.asarray(rep.ok).tolist() == [True, False]
