"""jaxmpc.run.config's XLA options: what they are, how a refusal is handled, and bit-identical results."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmpc
from jaxmpc import config


@pytest.fixture
def fresh_cache(monkeypatch):
    """Forget which options this XLA accepted (restored after the test)."""
    monkeypatch.setattr(config, "_accepted", {})


def test_cpu_options_are_accepted_or_refused_with_a_warning(fresh_cache):
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        options = config.compiler_options("cpu")
    refused = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    if options:
        assert options == config.RECOMMENDED_OPTIONS["cpu"] and not refused
        jax.jit(lambda v: v * 3, compiler_options=options)(jnp.arange(3))  # compiles with them
    else:  # another JAX: refused, and said so
        assert refused and "JAX's defaults" in str(refused[0].message)


def test_options_checked_while_tracing(fresh_cache):
    """The first check may happen inside a traced function (config.jit built in a jitted one)."""
    seen = []
    jax.jit(lambda v: seen.append(config.compiler_options("cpu")) or v)(jnp.zeros(2))
    assert seen == [config.compiler_options("cpu")] and seen[0] == config.RECOMMENDED_OPTIONS["cpu"]


def test_refused_option_falls_back_to_defaults(fresh_cache, monkeypatch):
    monkeypatch.setattr(config, "RECOMMENDED_OPTIONS", {"cpu": {"xla_cpu_no_such_option": True}})
    with pytest.warns(RuntimeWarning, match="xla_cpu_no_such_option"):
        assert config.compiler_options("cpu") == {}
    assert config.compiler_options("cpu") == {}  # checked once, then cached (no second warning)


def test_other_backends_and_bad_backend():
    assert config.compiler_options("gpu") == {}
    with pytest.raises(jaxmpc.InputTypeError, match="platform name"):
        config.compiler_options(0)


def test_jit_passes_options_and_user_options_win(monkeypatch):
    seen = {}

    def fake_jit(fn, **kwargs):
        seen.update(kwargs)
        return fn

    monkeypatch.setattr(config, "compiler_options", lambda backend=None: {"a": 1, "b": 2})
    monkeypatch.setattr(config.jax, "jit", fake_jit)
    config.jit(lambda v: v, compiler_options={"b": 3}, static_argnums=())
    assert seen == {"compiler_options": {"a": 1, "b": 3}, "static_argnums": ()}


@pytest.mark.parametrize("n_parties", [2, 3, 5])
def test_protocol_results_are_bit_identical_with_the_options(n_parties):
    """A product, a truncation, a ReLU and an opening, vmapped over keys like a sweep: the same
    shares with jaxmpc's options as with JAX's defaults."""
    fxp = jaxmpc.FixedPoint(2, 12)
    xv = np.array([[0.5, -1.25, 3.0], [-0.75, 2.0, 0.125]])

    def run(key):
        k = jax.random.split(key, 4)
        x, y = jaxmpc.share(k[0], xv, fxp, n_parties), jaxmpc.share(k[1], xv.T, fxp, n_parties)
        z, d = jaxmpc.relu(k[3], jaxmpc.matmul(k[2], x, y))
        return z.shares, d.shares, jaxmpc.reveal(z)

    data = jax.random.key_data(jax.random.split(jaxmpc.key(11), 4))

    def keys():  # the same keys for both, as two arrays (the key-reuse checker tracks each array)
        return jax.random.wrap_key_data(data, impl=jaxmpc.core.keys.SPLITMIX64)

    tuned = config.jit(jax.vmap(run))(keys())
    default = jax.jit(jax.vmap(run))(keys())
    for a, b in zip(tuned, default):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(np.asarray(tuned[2][0]), np.maximum(xv @ xv.T, 0), atol=0.01)
