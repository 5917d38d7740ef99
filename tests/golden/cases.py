"""Deterministic cases for the golden file: raw shares (and revealed values) of small runs.

Each case is a function of no arguments returning ``{name: numpy array}``: the raw ``uint64``
shares ``x.shares`` of :class:`jaxmpc.Shared` results, and revealed values where useful.
:func:`jaxmpc.key` (the project's own SplitMix64 keys) makes every random draw, so the shares
depend on jaxmpc's code alone. :data:`CASES` maps case names to the functions;
``tests/test_golden.py`` compares them bit for bit with ``shares.npz``, written by
``make_golden.py``.

The cases use the top-level ``jaxmpc`` namespace where it has the function; the rest is found by
:func:`_module`, since the golden file was made with the pre-move (flat) layout.
"""
from __future__ import annotations

import functools
import operator

import jax
import jax.numpy as jnp
import numpy as np

import jaxmpc
from jaxmpc import FixedPoint


def _module(new: str, old: str):
    """The submodule ``jaxmpc.<new>``, else ``jaxmpc.<old>``: the golden file was made with the
    pre-move layout (``jaxmpc.seed``, ``jaxmpc.train``, ...), so the cases run on both. Looked up as
    attributes of the imported package, not by import: an editable install of the new tree would
    otherwise lend its submodules to an old checkout on ``PYTHONPATH``. Drop with the old layout."""
    try:
        return operator.attrgetter(new)(jaxmpc)
    except AttributeError:
        return operator.attrgetter(old)(jaxmpc)


def configure() -> None:
    """The jax configuration of ``tests/conftest.py`` (for ``make_golden.py``, run outside pytest)."""
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    jax.config.update("jax_debug_key_reuse", True)


# Each case is one compiled function of (party count, key). LLVM optimisation off halves XLA's
# compile time, which is most of the test's; the values are the same (ring arithmetic is exact
# integer arithmetic, and no fast-math is involved in encoding and decoding).
_jit = functools.partial(jax.jit, static_argnums=0,
                         compiler_options={"xla_backend_optimization_level": 0})

PARTIES = (2, 3, 5)
FXP10 = (10, 4)  # FixedPoint(base, precision), made inside each case (x64 must be on first)
FXP2 = (2, 16)


def _arrays(**named) -> dict[str, np.ndarray]:
    """Numpy copies: the shares of every :class:`jaxmpc.Shared`, other arrays as they are."""
    out = {}
    for name, v in named.items():
        if isinstance(v, jaxmpc.Shared):
            v = v.shares
        out[name] = np.asarray(v)
    return out


def _values(shape, seed: int, scale: float = 2.0) -> np.ndarray:
    """Public float64 inputs in [-scale, scale): a fixed numpy stream (no jax draws)."""
    return np.random.default_rng(seed).uniform(-scale, scale, shape)


# ---- share --------------------------------------------------------------------------------------
@_jit
def _share(n, key):
    k_fxp, k_int, k_tree = jax.random.split(key, 3)
    x = _values((3, 4), 1)
    ints = np.array([[0, 1, -1, 7], [2**40, -(2**40), 123456789, -5]], np.int64)
    fx = jaxmpc.share(k_fxp, x, FixedPoint(*FXP10), n)
    fi = jaxmpc.share(k_int, ints, None, n)
    tree = jaxmpc.share(k_tree, {"a": [0.5, -0.25], "b": _values((2, 2), 2)}, FixedPoint(*FXP2), n)
    return fx, jaxmpc.reveal(fx), fi, jaxmpc.reveal(fi), tree


def share_case(n: int) -> dict[str, np.ndarray]:
    fx, fx_rev, fi, fi_rev, tree = _share(n, jaxmpc.key(100 + n))
    return _arrays(fxp=fx, fxp_revealed=fx_rev, int=fi, int_revealed=fi_rev, tree_a=tree["a"],
                   tree_b=tree["b"])


# ---- Beaver products ----------------------------------------------------------------------------
@_jit
def _mul(n, key):
    k_x, k_y, k_mul, k_int, k_bit_mul = jax.random.split(key, 5)
    fxp = FixedPoint(*FXP10)
    x = jaxmpc.share(k_x, _values((2, 3), 3), fxp, n)
    y = jaxmpc.share(k_y, _values((2, 3), 4), fxp, n)
    z = jaxmpc.mul(k_mul, x, y)
    bits = jaxmpc.share(k_int, np.array([[1, 0, 1], [0, 1, 1]], np.int64), None, n)
    zb = jaxmpc.mul(k_bit_mul, bits, z)  # plain integer times fixed point: no truncation
    return z, jaxmpc.reveal(z), zb, jaxmpc.reveal(zb)


def mul_case(n: int) -> dict[str, np.ndarray]:
    z, z_rev, zb, zb_rev = _mul(n, jaxmpc.key(200 + n))
    return _arrays(z=z, z_revealed=z_rev, bit_times_z=zb, bit_times_z_revealed=zb_rev)


@_jit
def _matmul(n, key):
    k_x, k_y, k_mm = jax.random.split(key, 3)
    fxp = FixedPoint(*FXP2)
    x = jaxmpc.share(k_x, _values((3, 4), 5), fxp, n)
    y = jaxmpc.share(k_y, _values((4, 2), 6), fxp, n)
    z = jaxmpc.matmul(k_mm, x, y)
    return z, jaxmpc.reveal(z)


def matmul_case(n: int) -> dict[str, np.ndarray]:
    z, z_rev = _matmul(n, jaxmpc.key(300 + n))
    return _arrays(z=z, z_revealed=z_rev)


# ---- comparison ---------------------------------------------------------------------------------
@_jit
def _relu(n, key):
    k_x, k_relu = jax.random.split(key)
    x = np.concatenate([_values((7,), 7), [0.0, -1e-4, 1e-4, 3.5, -3.5]]).reshape(3, 4)
    xs = jaxmpc.share(k_x, x, FixedPoint(*FXP10), n)
    y, bit = jaxmpc.relu(k_relu, xs)
    return y, bit, jaxmpc.reveal(y), jaxmpc.reveal(bit)


def relu_case(n: int) -> dict[str, np.ndarray]:
    y, bit, y_rev, bit_rev = _relu(n, jaxmpc.key(400 + n))
    return _arrays(y=y, bit=bit, y_revealed=y_rev, bit_revealed=bit_rev)


# ---- convolution --------------------------------------------------------------------------------
@_jit
def _conv(n, key):
    conv = _module("nn.conv", "conv")
    k_x, k_w, k_conv, k_init, k_p, k_fwd, k_dy, k_bwd = jax.random.split(key, 8)
    fxp = FixedPoint(*FXP2)
    x = jaxmpc.share(k_x, _values((1, 2, 4, 4), 8, 1.0), fxp, n)
    w = jaxmpc.share(k_w, _values((3, 2, 3, 3), 9, 0.5), fxp, n)
    y = conv.conv2d(k_conv, x, w, stride=1, padding=1)  # the Beaver convolution
    layer = conv.Conv2d(2, 2, 3, stride=2, padding=1)  # and the layer's forward and backward
    params = jaxmpc.share(k_p, layer.init(k_init), fxp, n)
    out, residual = layer.forward(k_fwd, params, x)
    dy = jaxmpc.share(k_dy, _values(out.shape, 10, 0.5), fxp, n)
    grads, dx = layer.backward(k_bwd, params, residual, dy)
    return (y, jaxmpc.reveal(y), params["weight"], out, grads["weight"], grads["bias"], dx,
            jaxmpc.reveal(dx))


def conv2d_case(n: int) -> dict[str, np.ndarray]:
    y, y_rev, weight, out, d_weight, d_bias, dx, dx_rev = _conv(n, jaxmpc.key(500 + n))
    return _arrays(conv2d=y, conv2d_revealed=y_rev, layer_weight=weight, layer_out=out,
                   layer_d_weight=d_weight, layer_d_bias=d_bias, layer_dx=dx,
                   layer_dx_revealed=dx_rev)


# ---- the seed tutorial --------------------------------------------------------------------------
TUTORIAL_ITERATIONS = 3


@_jit
def _tutorial(n, key, precision):
    tutorial = _module("tasks.tutorial", "seed")
    losses = _module("nn.losses", "losses")
    optim = _module("nn.optim", "optim")
    training = _module("nn.training", "train")
    k_run, k_fit = jax.random.split(key)
    # tutorial.run itself at 2 parties (its scan is a second compilation); it returns the losses
    # only, so the same run by hand gives the final shared weights, at every party count
    run_losses = (tutorial.run(k_run, precision, n_parties=n, iterations=TUTORIAL_ITERATIONS)
                  if n == 2 else None)
    fxp = FixedPoint(10, precision)
    k_data, k_target, k_model, k_opt, k_train = jax.random.split(k_fit, 5)
    x = jaxmpc.share(k_data, tutorial.DATA, fxp, n)
    t = jaxmpc.share(k_target, tutorial.TARGET, fxp, n)
    params = jaxmpc.share(k_model, tutorial.INIT, fxp, n)
    opt = optim.sgd(tutorial.LEARNING_RATE, key=k_opt)
    params, _, fit_losses = training.fit(k_train, tutorial.model(), losses.sse, opt, params,
                                         opt.init(params), x, t, TUTORIAL_ITERATIONS)
    return run_losses, params, fit_losses


def tutorial_case(n: int) -> dict[str, np.ndarray]:
    run_losses, params, fit_losses = _tutorial(n, jaxmpc.key(600 + n), jnp.int32(4))
    out = _arrays(fit_losses=fit_losses, w0=params[0]["weight"], b0=params[0]["bias"],
                  w2=params[2]["weight"], b2=params[2]["bias"])
    if run_losses is not None:
        out["run_losses"] = np.asarray(run_losses)
    return out


# ---- one digits training step -------------------------------------------------------------------
DIGITS_BATCH = 32


@functools.lru_cache(maxsize=None)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """The first 32 digits of scikit-learn's ``load_digits`` scaled to [0, 1], one-hot targets."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.asarray(bunch.data[:DIGITS_BATCH], np.float64) / 16.0
    t = (bunch.target[:DIGITS_BATCH, None] == np.arange(10)[None, :]).astype(np.float64)
    return x, t


@_jit
def _digits_step(n, key, x, t):
    losses = _module("nn.losses", "losses")
    optim = _module("nn.optim", "optim")
    training = _module("nn.training", "train")
    model = jaxmpc.nn.serial(jaxmpc.nn.Linear(64, 8), jaxmpc.nn.ReLU(), jaxmpc.nn.Linear(8, 10))
    k_init, k_p, k_x, k_t, k_opt, k_step = jax.random.split(key, 6)
    fxp = FixedPoint(*FXP2)
    params = jaxmpc.share(k_p, model.init(k_init), fxp, n)
    xs, ts = jaxmpc.share(k_x, x, fxp, n), jaxmpc.share(k_t, t, fxp, n)
    opt = optim.sgd(0.5, key=k_opt, momentum=0.9)
    params, state, loss = training.step(k_step, model, losses.mse, opt, params, opt.init(params),
                                        xs, ts)
    return params, state.trace, loss, jaxmpc.reveal(loss)


def digits_case(n: int) -> dict[str, np.ndarray]:
    x, t = _digits()
    params, trace, loss, loss_rev = _digits_step(n, jaxmpc.key(700 + n), x, t)
    return _arrays(w0=params[0]["weight"], b0=params[0]["bias"], w2=params[2]["weight"],
                   b2=params[2]["bias"], momentum_w0=trace[0]["weight"], loss=loss,
                   loss_revealed=loss_rev)


DIGITS_PARTIES = (2, 3)  # 5 parties: the tutorial trains there; one more compile of ~8 s


CASES = {f"{name}_{n}p": functools.partial(fn, n)
         for name, fn, parties in (("share", share_case, PARTIES), ("mul", mul_case, PARTIES),
                                   ("matmul", matmul_case, PARTIES), ("relu", relu_case, PARTIES),
                                   ("conv2d", conv2d_case, PARTIES),
                                   ("tutorial", tutorial_case, PARTIES),
                                   ("digits", digits_case, DIGITS_PARTIES))
         for n in parties}
