"""Cost accounting: tallies equal the closed-form Cost formulas of the protocol docstrings.

Everything here traces with ``jax.eval_shape`` (nothing runs or compiles), except where a jitted
function is called on purpose to fill JAX's trace cache before ``jaxmpc.cost`` is asked about it.
Byte counts are per party: ``8 (n_p - 1)`` bytes per opened ring element.
"""
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc.trace import accounting
from jaxmpc.trace.accounting import LAN, WAN, CostReport, NetworkModel
from jaxmpc.errors import ProtocolError

FXP = jaxmpc.FixedPoint(10, 3)
PARTIES = (2, 3)


def sds(n_parties, *shape, fxp=FXP):
    """An abstract shared value (no data): costs depend only on shapes."""
    return jaxmpc.Shared(jax.ShapeDtypeStruct((n_parties,) + shape, jnp.uint64), fxp)


def keys(k, seed=0):
    return jax.random.split(jax.random.key(seed), k)


def op(report: CostReport, name: str):
    assert name in report.ops, f"{name} missing from {list(report.ops)}"
    return report.ops[name]


def assert_opening(c, *, n_p, calls, rounds, opened, dealer_elements):
    assert (c.calls, c.rounds, c.elements_opened) == (calls, rounds, opened)
    assert c.bytes_per_party == 8 * (n_p - 1) * opened
    assert c.bytes_total == n_p * 8 * (n_p - 1) * opened
    assert c.dealer_bytes_per_party == 8 * dealer_elements


# ---- closed-form formulas of the protocols --------------------------------------------------------
@pytest.mark.parametrize("n_p", PARTIES)
@pytest.mark.parametrize("m,k,n", [(2, 3, 4), (1, 5, 1), (4, 1, 2)])
def test_matmul_with_dealer_truncation(n_p, m, k, n):
    r = jaxmpc.cost(jaxmpc.matmul, jax.random.key(0), sds(n_p, m, k), sds(n_p, k, n))
    assert list(r.ops) == ["matmul", "truncate/dealer"]
    # Beaver: opens e (m k) and f (k n) in one round; dealer sends a, b, c = a @ b
    assert_opening(op(r, "matmul"), n_p=n_p, calls=1, rounds=1, opened=m * k + k * n,
                   dealer_elements=m * k + k * n + m * n)
    # truncation: opens c = x' + r (m n) in one round; dealer sends r, r_63, q (3 per element)
    assert_opening(op(r, "truncate/dealer"), n_p=n_p, calls=1, rounds=1, opened=m * n,
                   dealer_elements=3 * m * n)
    assert r.n_parties == n_p
    assert r.rounds == 2
    assert r.elements_opened == m * k + k * n + m * n
    assert r.bytes_per_party == 8 * (n_p - 1) * (m * k + k * n + m * n)
    assert r.dealer_bytes_per_party == 8 * (m * k + k * n + m * n) + 3 * 8 * m * n


@pytest.mark.parametrize("n_p", PARTIES)
@pytest.mark.parametrize("xs,ys,zs", [((5,), (5,), (5,)), ((3, 1), (1, 4), (3, 4)), ((), (), ()),
                                      ((2, 3), (3,), (2, 3))])
def test_mul_with_dealer_truncation(n_p, xs, ys, zs):
    size = lambda s: int(np.prod(s, dtype=np.int64))  # noqa: E731
    r = jaxmpc.cost(jaxmpc.mul, jax.random.key(0), sds(n_p, *xs), sds(n_p, *ys))
    # broadcasting opens each operand at its own size (size-1 axes are not expanded first)
    assert_opening(op(r, "mul"), n_p=n_p, calls=1, rounds=1, opened=size(xs) + size(ys),
                   dealer_elements=size(xs) + size(ys) + size(zs))
    assert_opening(op(r, "truncate/dealer"), n_p=n_p, calls=1, rounds=1, opened=size(zs),
                   dealer_elements=3 * size(zs))
    assert r.rounds == 2


@pytest.mark.parametrize("n_p", PARTIES)
def test_every_simulation_mode_costs_the_protocol(n_p):
    modes = getattr(sys.modules["jaxmpc.protocols.additive.beaver"], "MODES", ("protocol",))
    reports = [jaxmpc.cost(lambda k, x, y, m=m: jaxmpc.matmul(k, x, y, mode=m) if m != "protocol"
                           else jaxmpc.matmul(k, x, y), jax.random.key(0), sds(n_p, 2, 3), sds(n_p, 3, 4))
               for m in modes]
    assert all(r.to_dict() == reports[0].to_dict() for r in reports)


@pytest.mark.parametrize("n_p", PARTIES)
def test_mul_of_plain_integer_bit_has_no_truncation(n_p):
    r = jaxmpc.cost(jaxmpc.mul, jax.random.key(0), sds(n_p, 4, fxp=None), sds(n_p, 4))
    assert list(r.ops) == ["mul"]
    assert_opening(op(r, "mul"), n_p=n_p, calls=1, rounds=1, opened=8, dealer_elements=12)


def test_local_truncation_is_free():
    r = jaxmpc.cost(lambda k, x, y: jaxmpc.matmul(k, x, y, truncation="local"),
                    jax.random.key(0), sds(2, 2, 3), sds(2, 3, 4))
    local = op(r, "truncate/local")
    assert (local.calls, local.rounds, local.elements_opened) == (1, 0, 0)
    assert local.bytes_per_party == local.dealer_bytes_per_party == 0
    assert r.rounds == 1
    assert r.bytes_per_party == 8 * (6 + 12)
    r = jaxmpc.cost(lambda k, x: jaxmpc.mul_public(k, x, 0.5, truncation="local"),
                    jax.random.key(0), sds(2, 7))
    assert (r.rounds, r.bytes_per_party, r.dealer_bytes_per_party) == (0, 0, 0)
    assert op(r, "truncate/local").calls == 1


def test_local_truncation_refuses_three_parties():
    with pytest.raises(ProtocolError):
        jaxmpc.cost(lambda k, x, y: jaxmpc.mul(k, x, y, truncation="local"),
                    jax.random.key(0), sds(3, 2), sds(3, 2))


@pytest.mark.parametrize("n_p", PARTIES)
@pytest.mark.parametrize("shape", [(), (7,), (2, 3)])
def test_dealer_truncation_alone(n_p, shape):
    size = int(np.prod(shape, dtype=np.int64))
    for fn in (lambda k, x: jaxmpc.mul_public(k, x, 0.25), lambda k, x: jaxmpc.div_public(k, x, 3)):
        r = jaxmpc.cost(fn, jax.random.key(0), sds(n_p, *shape))
        assert list(r.ops) == ["truncate/dealer"]
        assert_opening(op(r, "truncate/dealer"), n_p=n_p, calls=1, rounds=1, opened=size,
                       dealer_elements=3 * size)
    shares = jax.ShapeDtypeStruct((n_p,) + shape, jnp.uint64)
    r = jaxmpc.cost(lambda k, s: jaxmpc.truncate_shares(k, s, jnp.uint64(1000)), jax.random.key(0), shares)
    assert_opening(op(r, "truncate/dealer"), n_p=n_p, calls=1, rounds=1, opened=size,
                   dealer_elements=3 * size)


@pytest.mark.parametrize("n_p", PARTIES)
def test_reveal(n_p):
    r = jaxmpc.cost(jaxmpc.reveal, sds(n_p, 3, 5))
    assert_opening(op(r, "reveal"), n_p=n_p, calls=1, rounds=1, opened=15, dealer_elements=0)
    # a pytree of shared values: one record per leaf (sequential rounds: an upper bound)
    r = jaxmpc.cost(jaxmpc.reveal, {"a": sds(n_p, 2), "b": sds(n_p, 3)})
    assert_opening(op(r, "reveal"), n_p=n_p, calls=2, rounds=2, opened=5, dealer_elements=0)


@pytest.mark.parametrize("n_p", (2, 3, 5))
@pytest.mark.parametrize("shape", [(3,), (2, 2)])
def test_relu_matches_its_docstring(n_p, shape):
    m = int(np.prod(shape))
    L = {2: 0, 3: 1, 5: 3}[n_p]  # csa_layers(n), as listed in msb's docstring
    # AND words (msb's docstring): compressors 2 (n - 2) m words, 2 opened / 3 dealt each; the
    # generate word m (2 / 3); the carry tree's packed words ceil(m/2), ceil(m/4), ... (3 / 5),
    # and at its last level ceil(m/64) (2 / 3). For m <= 4: 2 or 1 packed words, then lone words.
    tree = [-(-m // 2)] + [1] * 5
    opened = 4 * (n_p - 2) * m + 2 * m + 3 * sum(tree[:5]) + 2 * tree[5]
    dealt = 6 * (n_p - 2) * m + 3 * m + 5 * sum(tree[:5]) + 3 * tree[5]
    assert jaxmpc.protocols.additive.binary.msb_words(n_p, m) == (opened, dealt)
    r = jaxmpc.cost(jaxmpc.relu, jax.random.key(0), sds(n_p, *shape))
    assert r.rounds == L + 9
    # the B2A's 1-bit openings and 65-bit dealer elements: one message each, in whole bytes
    assert r.bytes_per_party == 8 * (n_p - 1) * (opened + 2 * m) + (n_p - 1) * -(-m // 8)
    assert r.dealer_bytes_per_party == 8 * (dealt + 3 * m) + -(-65 * m // 8)


def test_bit_openings_are_whole_bytes_per_message():
    """Bits are exact; bytes are each message rounded up to whole bytes, then summed (integers)."""
    def f(x):
        for _ in range(2):  # two 1-bit openings of 3 elements among 3 parties
            accounting.record("bits", n_parties=3, rounds=1, elements_opened=3, bits_per_element=1,
                              dealer_elements=3, dealer_bits=65)
        return x
    r = jaxmpc.cost(f, jnp.zeros(()))
    c = r.ops["bits"]
    assert (c.bits_per_party, c.bits_total, c.dealer_bits_per_party) == (2 * 2 * 3, 3 * 2 * 2 * 3, 2 * 3 * 65)
    # each opening: one 3-bit message (1 byte) to each of the 2 others; not 0.75 bytes, nor
    # ceil(12 / 8) = 2 bytes for the two openings together
    assert r.bytes_per_party == 2 * 2 * 1 and r.bytes_total == 3 * 2 * 2 * 1
    assert r.dealer_bytes_per_party == 2 * 25  # ceil(195 / 8) per record
    d = r.to_dict()
    assert all(isinstance(d[k], int) for k in ("bytes_per_party", "bytes_total", "dealer_bytes_per_party"))
    assert d["bits_per_party"] == 12


def test_local_operations_cost_nothing():
    r = jaxmpc.cost(lambda x, y: (x + y) * 3 - x.sum(), sds(2, 4), sds(2, 4))
    assert (r.rounds, r.bytes_per_party, r.dealer_bytes_per_party, r.ops) == (0, 0, 0, {})
    assert "no communication recorded" in str(r)


def test_record_outside_collection_is_a_no_op():
    accounting.record("x", n_parties=2, rounds=1, elements_opened=1)  # must not raise or leak
    with accounting.collecting() as t:
        accounting.record("x", n_parties=2, rounds=1, elements_opened=1)
        with accounting.collecting() as inner:
            accounting.record("x", n_parties=2, rounds=1, elements_opened=1)
    assert t.ops["x"].calls == 2 and inner.ops["x"].calls == 1


# ---- robustness: jit caches, vmap, values ---------------------------------------------------------
def _step(key, x, w):
    """A tiny training-like step: forward matmul, product, public scaling, reveal of the output."""
    k1, k2, k3 = jax.random.split(key, 3)
    h = jaxmpc.matmul(k1, x, w)
    h2 = jaxmpc.mul(k2, h, h)
    return jaxmpc.reveal(jaxmpc.mul_public(k3, h2, 0.5))


def _step_formula(n_p, m, k, n):
    """(rounds, bytes per party, dealer bytes per party) of _step for x (m, k), w (k, n)."""
    opened = (m * k + k * n + m * n) + (2 * m * n + m * n) + m * n + m * n
    dealer = 8 * (m * k + k * n + m * n) + 24 * m * n + 8 * 3 * m * n + 24 * m * n + 24 * m * n
    return 6, 8 * (n_p - 1) * opened, dealer


def concrete(n_p, *shape, seed=0, zero=False):
    """A shared value with concrete (NumPy-drawn) shares: cheap, nothing to compile."""
    rng = np.random.default_rng(seed)
    v = np.zeros((n_p,) + shape, np.uint64) if zero else \
        rng.integers(0, 2**64 - 1, (n_p,) + shape, dtype=np.uint64, endpoint=True)
    return jaxmpc.Shared(jnp.asarray(v), FXP)


@pytest.mark.parametrize("n_p", PARTIES)
def test_cost_of_a_jitted_step_already_traced(n_p):
    step = jax.jit(_step)
    key, x, w = jax.random.key(0), sds(n_p, 2, 3), sds(n_p, 3, 4)
    jax.eval_shape(step, key, x, w)  # fills JAX's trace cache, as a first call does (without compiling)
    expected = _step_formula(n_p, 2, 3, 4)
    for _ in range(2):  # and again: the first cost() must not poison the second
        r = jaxmpc.cost(step, key, x, w)
        assert (r.rounds, r.bytes_per_party, r.dealer_bytes_per_party) == expected
    assert jaxmpc.cost(_step, key, x, w).to_dict() == r.to_dict()


def test_nested_jit_called_twice_counts_twice():
    inner = jax.jit(jaxmpc.matmul)
    key, x, w = jax.random.key(0), sds(2, 2, 3), sds(2, 3, 4)
    jax.eval_shape(inner, key, x, w)  # cached before cost() is asked

    @jax.jit
    def outer(key, x, w):
        k1, k2 = jax.random.split(key)
        return inner(k1, x, w), inner(k2, x, w)  # same function, same shapes: the trace cache hits

    jax.eval_shape(outer, key, x, w)
    r = jaxmpc.cost(outer, key, x, w)
    assert op(r, "matmul").calls == 2 and op(r, "truncate/dealer").calls == 2
    assert r.rounds == 4


def test_cost_after_a_real_call_and_no_retrace_of_normal_calls():
    traces = []

    @jax.jit
    def f(x):  # cheap to compile: one opening
        traces.append(1)
        return jaxmpc.reveal(x + x)

    x = concrete(3, 2, 3)
    f(x)  # a real call: traced and compiled
    assert len(traces) == 1
    for _ in range(2):
        r = jaxmpc.cost(f, x)
        assert_opening(op(r, "reveal"), n_p=3, calls=1, rounds=1, opened=6, dealer_elements=0)
    assert len(traces) == 3  # cost() re-traced it (only traced: nothing compiled) ...
    f(x)
    assert len(traces) == 3  # ... and the normal cache entry is intact: no retrace, no recompile


@pytest.mark.parametrize("n_p", PARTIES)
def test_costs_are_per_run_under_vmap(n_p):
    batch = 5

    def run(key, xs, ws):
        return _step(key, jaxmpc.Shared(xs, FXP), jaxmpc.Shared(ws, FXP))

    single = jaxmpc.cost(run, jax.random.key(0), jax.ShapeDtypeStruct((n_p, 2, 3), jnp.uint64),
                         jax.ShapeDtypeStruct((n_p, 3, 4), jnp.uint64))
    batched = jaxmpc.cost(jax.jit(jax.vmap(run)), keys(batch),
                          jax.ShapeDtypeStruct((batch, n_p, 2, 3), jnp.uint64),
                          jax.ShapeDtypeStruct((batch, n_p, 3, 4), jnp.uint64))
    assert batched.to_dict() == single.to_dict()
    assert (single.rounds, single.bytes_per_party, single.dealer_bytes_per_party) == \
        _step_formula(n_p, 2, 3, 4)


def test_costs_do_not_depend_on_values():
    key = jax.random.key(0)
    a = jaxmpc.cost(_step, key, concrete(3, 2, 3, seed=1), concrete(3, 3, 4, seed=2))
    b = jaxmpc.cost(_step, key, concrete(3, 2, 3, zero=True), concrete(3, 3, 4, zero=True))
    c = jaxmpc.cost(_step, key, sds(3, 2, 3), sds(3, 3, 4))
    assert a.to_dict() == b.to_dict() == c.to_dict()


def test_compiled_executables_are_refused():
    lowered = jax.jit(jaxmpc.reveal).lower(sds(2, 3))
    with pytest.raises(TypeError, match="original function"):
        jaxmpc.cost(lowered, sds(2, 3))


def test_static_arguments_pass_through():
    def f(key, x, times: int, *, method: str):
        for k in jax.random.split(key, times):
            x = jaxmpc.mul_public(k, x, 0.5, truncation=method)
        return x

    r = jaxmpc.cost(f, jax.random.key(0), sds(2, 4), 3, method="dealer")
    assert op(r, "truncate/dealer").calls == 3
    r = jaxmpc.cost(f, jax.random.key(0), sds(2, 4), 2, method="local")
    assert op(r, "truncate/local").calls == 2 and r.rounds == 0


# ---- loops -------------------------------------------------------------------------------------------
def _reveal_body(c, k):
    y = jaxmpc.mul_public(k, c, 0.5)
    return y, jaxmpc.reveal(y)


def test_scan_body_counts_once_by_default():
    r = jaxmpc.cost(lambda key, x: jax.lax.scan(_reveal_body, x, jax.random.split(key, 6)),
                    jax.random.key(0), sds(2, 3))
    assert op(r, "reveal").calls == 1 and op(r, "truncate/dealer").calls == 1  # the cost of one step
    assert r.rounds == 2


def test_repeat_counts_every_step():
    def loop(key, x):
        with accounting.repeat(6):
            return jax.lax.scan(_reveal_body, x, jax.random.split(key, 6))

    r = jaxmpc.cost(loop, jax.random.key(0), sds(3, 3))
    assert op(r, "reveal").calls == 6 and r.rounds == 12
    assert r.bytes_per_party == 6 * 2 * 8 * 2 * 3


@pytest.mark.parametrize("n_p", PARTIES)
def test_accounting_scan_counts_every_step(n_p):
    def loop(key, x):
        return accounting.scan(_reveal_body, x, jax.random.split(key, 6))

    one = jaxmpc.cost(_reveal_body, sds(n_p, 3), jax.random.key(1))
    r = jaxmpc.cost(jax.jit(loop), jax.random.key(0), sds(n_p, 3))
    assert r.rounds == 6 * one.rounds
    assert r.bytes_per_party == 6 * one.bytes_per_party
    assert r.dealer_bytes_per_party == 6 * one.dealer_bytes_per_party
    assert op(r, "reveal").calls == 6
    # outside a collection it is plain lax.scan
    x = concrete(n_p, 3)
    c, ys = jax.jit(lambda x: accounting.scan(lambda c, _: (c, jaxmpc.reveal(c)), x, length=4))(x)
    assert ys.shape == (4, 3) and c.shape == (3,)


def test_accounting_scan_nested_and_twice_traced_bodies():
    def inner(c, _):
        accounting.record("step", n_parties=2, rounds=1, elements_opened=1)
        return c, None

    def outer(c, _):
        c, _ = accounting.scan(inner, c, length=4)
        return c, None

    r = jaxmpc.cost(lambda c: accounting.scan(outer, c, length=3)[0], jnp.zeros((), jnp.float32))
    assert op(r, "step").calls == 12
    # A weakly typed carry promoted by the body makes JAX trace the body twice; only the trace that
    # runs is counted.
    def promoting(c, _):
        accounting.record("step", n_parties=2, rounds=1, elements_opened=1)
        return c + jnp.float32(1), None

    r = jaxmpc.cost(lambda: accounting.scan(promoting, 0.0, length=5)[0])
    assert op(r, "step").calls == 5


def test_repeat_rejects_traced_counts():
    with pytest.raises(ValueError, match="static trip count"):
        with accounting.repeat(2.5):
            pass


# ---- the report and the network model --------------------------------------------------------------
def test_estimate_formula():
    r = jaxmpc.cost(jaxmpc.matmul, jax.random.key(0), sds(2, 2, 3), sds(2, 3, 4))
    model = NetworkModel(latency_s=0.5, bandwidth_bytes_per_s=100.0)
    assert r.estimate(model) == pytest.approx(r.rounds * 0.5 + r.bytes_per_party / 100.0)
    assert r.estimate(model, include_dealer=True) == pytest.approx(
        r.rounds * 0.5 + (r.bytes_per_party + r.dealer_bytes_per_party) / 100.0)
    assert r.estimate(LAN) == pytest.approx(2 * 1e-4 + r.bytes_per_party / 1.25e9)
    assert r.estimate(WAN) == pytest.approx(2 * 40e-3 + r.bytes_per_party / 12.5e6)
    assert jaxmpc.LAN is LAN and jaxmpc.WAN is WAN
    with pytest.raises(TypeError):
        r.estimate("LAN")


@pytest.mark.parametrize("bad", [dict(latency_s=-1.0, bandwidth_bytes_per_s=1.0),
                                 dict(latency_s=0.0, bandwidth_bytes_per_s=0.0),
                                 dict(latency_s=float("nan"), bandwidth_bytes_per_s=1.0),
                                 dict(latency_s="1ms", bandwidth_bytes_per_s=1.0)])
def test_network_model_rejects_bad_numbers(bad):
    with pytest.raises(ValueError, match="NetworkModel"):
        NetworkModel(**bad)


def test_report_table_and_dict():
    r = jaxmpc.cost(_step, jax.random.key(0), sds(2, 2, 3), sds(2, 3, 4))
    text = str(r)
    for name in r.ops:
        assert name in text
    assert "ESTIMATED" in text and "not a measurement" in text and "LAN" in text and "WAN" in text
    lines = text.splitlines()
    header = next(i for i, s in enumerate(lines) if s.startswith("operation"))
    rows = lines[header:header + len(r.ops) + 4]  # header, rule, ops, rule, total
    assert len({len(s) for s in rows}) == 1, "table columns are not aligned"
    d = json.loads(json.dumps(r.to_dict()))
    assert d["rounds"] == r.rounds and d["bytes_per_party"] == r.bytes_per_party
    assert d["n_parties"] == 2 and set(d["ops"]) == set(r.ops)
    assert sum(o["bytes_per_party"] for o in d["ops"].values()) == d["bytes_per_party"]
    assert d["estimated_seconds"]["WAN"]["online"] == pytest.approx(r.estimate(WAN))
