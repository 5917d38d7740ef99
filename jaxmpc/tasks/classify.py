r"""Encrypted classification on a real data set, beside a plaintext twin trained step for step the same way.

The training features, the one-hot targets and the model's weights are secret-shared among the
parties (a dealer supplies correlated randomness); minibatch SGD with momentum on the MSE (or the
softmax cross-entropy) runs on the shares. A float64 plaintext twin starts from the same initial
weights and sees the same batches in the same order, so the two are comparable step by step. Each
epoch is one jit-compiled ``lax.scan`` over the minibatches (:func:`jaxmpc.nn.training.epoch`, the
library's one training loop). After every epoch the encrypted model classifies the *shared* test
set and only the predicted labels are revealed (a secure argmax, :mod:`jaxmpc.nn.inference`).

The pieces, all pure functions of their keys and of a static :class:`Config`:

- :func:`make_model` (an :func:`~jaxmpc.nn.models.mlp` or a :func:`~jaxmpc.nn.models.cnn`),
  :func:`model_inputs` (features, or images for the CNN);
- the encrypted run: :func:`setup` (share data and weights), :func:`step`, :func:`epoch`,
  :func:`predict`; its twin: :func:`plain_epoch`, :func:`plain_predict`; :func:`max_deviation`
  between them;
- :func:`full_run`: a whole run and its twin as ONE pure, vmappable function (what
  ``experiments/sweep.py`` sweeps);
- :func:`train`: the same run epoch by epoch, evaluating both after every epoch and timing the
  epochs (what ``experiments/train.py`` prints).

Revealing the parameters after each epoch (for the deviation from the twin) is a measurement of the
simulator, not part of the protocol; the revealed training loss per step is (as in the seed task).

Example (the static configuration and the model; ``train(ds, cfg, precision=16,
learning_rate=0.1, epochs=2, batch_size=64)`` would train it):
    >>> import jax; jax.config.update("jax_enable_x64", True)
    >>> from jaxmpc.tasks import classify, data
    >>> ds = data.load("digits")
    >>> cfg = classify.config_for(ds, model="cnn", hidden=(32,))
    >>> classify.describe(cfg)
    'CNN 1x8x8-conv8-maxpool-conv16-avgpool-32-10'
    >>> classify.model_inputs(cfg, ds.x_test).shape[1:], classify.default_lr("digits", model="cnn")
    ((1, 8, 8), 0.5)
"""
from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..core.fixedpoint import FixedPoint
from ..core.keys import key as make_key
from ..errors import InputTypeError
from ..nn import inference, losses, models, optim, training
from ..nn.layers import Layer
from ..protocols.shared import Shared, reveal, share
from ..run import config as run_config
from ..trace import accounting
from ..trace.accounting import CostReport
from . import data


# ---- static configuration ------------------------------------------------------------------------
class Config(NamedTuple):
    """What changes the program (static, hashable). Precision and learning rate are array data."""

    n_features: int
    n_classes: int
    hidden: tuple[int, ...] = (128,)
    n_parties: int = 2
    base: int = 2
    truncation: str = "default"
    mode: str = "protocol"
    momentum: float = 0.9
    loss: str = "mse"
    model: str = "mlp"                      # one of MODELS
    channels: tuple[int, ...] = (8, 16)     # CNN: output channels of the two convolutions
    image_shape: tuple[int, ...] = ()       # CNN: (C, H, W) of one example's n_features
    protocol: str = "additive"              # the protocol family (jaxmpc.share(protocol=...))
    ring: int = 64                          # the ring width in bits (jaxmpc.share(ring=...))


MODELS = ("mlp", "cnn") + tuple(models.NETWORKS)
FLAT_MODELS = ("mlp", "network-a")  # the models that take feature vectors; the others take images
# (C, H, W) of the data sets that are images (their features are the pixels, row-major)
IMAGE_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28)}
# the secure loss and its plaintext twin
LOSSES: dict[str, tuple[Callable, Callable]] = {
    "mse": (losses.mse, losses.mse_plain),
    "ce": (losses.softmax_cross_entropy, losses.softmax_cross_entropy_plain)}

# Learning rates, stable for momentum 0.9 and batch 32 (chosen on plaintext runs, 3 seeds, 10
# epochs): the MLP on the MSE per data set (digits: lr 2 diverges at batch 16; breast_cancer
# diverges from lr 0.5 up); the CNN on the MSE (lr 1 dips, lr 2 is noisier, lr 4 diverges); and the
# softmax cross-entropy, whose gradients are larger than the MSE's (which averages over batch x
# classes).
DEFAULT_LR = {"digits": 0.5, "breast_cancer": 0.1, "mnist": 0.5}
DEFAULT_LR_CNN = 0.5
DEFAULT_LR_CE = {"digits": 0.1, "breast_cancer": 0.05, "mnist": 0.1}


def default_lr(dataset: str, loss: str = "mse", model: str = "mlp") -> float:
    """The default learning rate: :data:`DEFAULT_LR_CE` for ``loss="ce"``, else
    :data:`DEFAULT_LR_CNN` for the CNN, else :data:`DEFAULT_LR` of the data set."""
    if loss == "ce":
        return DEFAULT_LR_CE[dataset]
    return DEFAULT_LR_CNN if model == "cnn" else DEFAULT_LR[dataset]


def config_for(ds: data.Dataset, **options) -> Config:
    """The :class:`Config` of a model for ``ds`` (features, classes and, for an image data set,
    its image shape from :data:`IMAGE_SHAPES`); ``options`` are the other fields."""
    if options.get("model", "mlp") not in MODELS:
        raise InputTypeError(f"model must be one of {MODELS}, got {options['model']!r}.")
    model = options.get("model", "mlp")
    if model == "cnn" and ds.name not in IMAGE_SHAPES:
        raise InputTypeError(f"model 'cnn' needs an image data set ({', '.join(IMAGE_SHAPES)}), got "
                             f"{ds.name!r}; use model 'mlp' for it.")
    if model in models.NETWORKS and ds.name != "mnist":
        raise InputTypeError(f"model {model!r} is one of the field's MNIST networks (28x28 images, 10 "
                             f"classes), got data set {ds.name!r}; use --dataset mnist.")
    if options.get("loss", "mse") not in LOSSES:
        raise InputTypeError(f"loss must be one of {tuple(LOSSES)}, got {options['loss']!r}.")
    for name in ("hidden", "channels"):
        if name in options:
            options[name] = tuple(options[name])
    return Config(n_features=ds.n_features, n_classes=ds.n_classes,
                  image_shape=IMAGE_SHAPES.get(ds.name, ()), **options)


def describe(cfg: Config) -> str:
    """The architecture in one line, e.g. ``MLP 64-128-10``."""
    if cfg.model in models.NETWORKS:
        return cfg.model
    if cfg.model == "mlp":
        trunk = f"MLP {cfg.n_features}-"
    else:
        trunk = (f"CNN {'x'.join(map(str, cfg.image_shape))}-conv{cfg.channels[0]}-maxpool-conv"
                 f"{cfg.channels[1]}-avgpool-")
    return trunk + "".join(f"{h}-" for h in cfg.hidden) + f"{cfg.n_classes}"


def make_model(cfg: Config) -> Layer:
    """The MLP ``n_features -> hidden... -> n_classes`` (:func:`jaxmpc.nn.models.mlp`), or for
    ``cfg.model == "cnn"`` the CNN of :func:`jaxmpc.nn.models.cnn` with ``cfg.hidden`` as its dense
    head, or one of :data:`jaxmpc.nn.models.NETWORKS` (MNIST). The convolutional ones take images
    (:func:`model_inputs`)."""
    opts = {"truncation": cfg.truncation, "mode": cfg.mode}
    if cfg.model in models.NETWORKS:  # fixed shapes (cfg.hidden and cfg.channels unused)
        return models.NETWORKS[cfg.model](**opts)
    if cfg.model == "cnn":
        return models.cnn(cfg.image_shape, cfg.channels, cfg.hidden, cfg.n_classes, **opts)
    return models.mlp((cfg.n_features, *cfg.hidden, cfg.n_classes), **opts)


def model_inputs(cfg: Config, x):
    """The model's input array: the features, or for the CNN the images ``(n, C, H, W)``.

    (A reshape of the data, not a layer: the first layer's input gradient is then never computed.)"""
    return x if cfg.model in FLAT_MODELS else jnp.reshape(x, (-1,) + tuple(cfg.image_shape))


def batch_orders(key, epochs: int, n: int, batch_size: int) -> jax.Array:
    """``int32[epochs, n // batch_size, batch_size]``: one fixed random permutation per epoch."""
    return jnp.stack([data.batch_order(k, n, batch_size) for k in jax.random.split(key, epochs)])


def _momentum(cfg: Config):
    return cfg.momentum if cfg.momentum else None


def loss_fn(cfg: Config) -> Callable:
    """``loss(key, pred, target) -> (loss, dpred)``: the secure loss of ``cfg.loss``."""
    secure = LOSSES[cfg.loss][0]

    def loss(key, pred, target):
        return secure(key, pred, target, truncation=cfg.truncation)
    return loss


# ---- encrypted training -------------------------------------------------------------------------
class EncState(NamedTuple):
    """One encrypted run: the carried key, shared params and optimizer state, shared data."""

    key: Any
    params: Any
    opt_state: Any
    x: Shared       # training features (n_train, d)
    t: Shared       # one-hot training targets (n_train, C)
    x_test: Shared  # test features (n_test, d)


def setup(key, precision, init_params, x_train, t_train, x_test, *, cfg: Config) -> EncState:
    """Share the data, targets and initial weights (plaintext, from ``make_model(cfg).init``)."""
    fxp = FixedPoint(cfg.base, precision)
    k_x, k_t, k_test, k_params, k_opt, k_run = jax.random.split(key, 6)

    def shared(k, v):
        return share(k, v, fxp, cfg.n_parties, protocol=cfg.protocol, ring=cfg.ring)

    params = shared(k_params, init_params)
    opt = optim.sgd(0.0, key=k_opt, momentum=_momentum(cfg), truncation=cfg.truncation)
    return EncState(k_run, params, opt.init(params), shared(k_x, x_train), shared(k_t, t_train),
                    shared(k_test, x_test))


def optimizer(learning_rate, opt_state, cfg: Config) -> optax.GradientTransformation:
    """The SGD transformation for ``update``. Its key lives in ``opt_state`` (split every step by
    ``update``); the one given here only seeds ``init``, which is not called again."""
    return optim.sgd(learning_rate, key=opt_state.key, momentum=_momentum(cfg), truncation=cfg.truncation)


def step(key, params, opt_state, xb, tb, learning_rate, *, cfg: Config):
    """One encrypted SGD step on a shared minibatch; returns ``(params, opt_state, shared loss)``."""
    return training.step(key, make_model(cfg), loss_fn(cfg), optimizer(learning_rate, opt_state, cfg),
                         params, opt_state, xb, tb)


def epoch(state: EncState, order, learning_rate, *, cfg: Config):
    """One epoch, :func:`jaxmpc.nn.training.epoch` over the minibatches ``order: int32[n_batches,
    batch]``. Returns ``(state, losses)`` with ``losses: float64[n_batches]`` (revealed, before
    each update)."""
    key, params, opt_state, step_losses = training.epoch(
        state.key, make_model(cfg), loss_fn(cfg), optimizer(learning_rate, state.opt_state, cfg),
        state.params, state.opt_state, state.x, state.t, order)
    return state._replace(key=key, params=params, opt_state=opt_state), step_losses


def predict(key, params, x_test: Shared, *, cfg: Config):
    """Labels of the shared test set; only they are revealed (secure argmax)."""
    return inference.predict(key, make_model(cfg), params, x_test)


# ---- the plaintext twin -------------------------------------------------------------------------
def plain_optimizer(learning_rate, cfg: Config) -> optax.GradientTransformation:
    """optax SGD with the same momentum convention as :func:`jaxmpc.nn.optim.sgd`."""
    return optax.sgd(learning_rate, momentum=_momentum(cfg))


def plain_epoch(params, opt_state, order, learning_rate, x, t, *, cfg: Config):
    """The twin's epoch (:func:`jaxmpc.nn.training.plain_epoch`): float64, ``jax.value_and_grad``
    of the model's ``plain`` function. Returns ``(params, opt_state, losses)``."""
    return training.plain_epoch(make_model(cfg), LOSSES[cfg.loss][1], plain_optimizer(learning_rate, cfg),
                                params, opt_state, x, t, order)


def plain_predict(params, x, *, cfg: Config):
    return jnp.argmax(make_model(cfg).plain(params, x), axis=-1)


def max_deviation(enc_params, plain_params) -> jax.Array:
    """``max |reveal(params) - plain params|`` over every parameter."""
    devs = jax.tree_util.tree_map(lambda e, p: jnp.max(jnp.abs(e - p), initial=0.0),
                                  reveal(enc_params), plain_params)
    return jnp.max(jnp.stack(jax.tree_util.tree_leaves(devs) or [jnp.zeros(())]))


# ---- a whole run as one pure function (what experiments/sweep.py vmaps) ----------------------------
def full_run(key, precision, learning_rate, init_params, orders, x_train, t_train, x_test, y_test,
             *, cfg: Config):
    """One encrypted run and its plaintext twin, all epochs, as one pure (vmappable) function.

    Args:
        key: PRNG key of the encrypted run (shares, dealer, truncations, inference).
        precision: fixed-point precision (array data).
        learning_rate: public learning rate (array data).
        init_params: plaintext initial weights, shared by the run and its twin.
        orders: ``int32[epochs, n_batches, batch]`` batch order.
        x_train, t_train, x_test, y_test: plaintext data (one-hot targets, int test labels).
    Returns:
        dict of ``encrypted_loss`` / ``plaintext_loss`` (``float64[epochs]``, mean over each epoch's
        minibatch losses), ``encrypted_test_accuracy``, ``plaintext_test_accuracy`` and
        ``max_param_deviation`` (scalars, after the last epoch).
    """
    k_setup, k_pred = jax.random.split(key)
    x_train, x_test = model_inputs(cfg, x_train), model_inputs(cfg, x_test)
    state = setup(k_setup, precision, init_params, x_train, t_train, x_test, cfg=cfg)

    def enc_body(s, order):
        s, step_losses = epoch(s, order, learning_rate, cfg=cfg)
        return s, jnp.mean(step_losses)

    state, enc_losses = jax.lax.scan(enc_body, state, orders)
    labels = predict(k_pred, state.params, state.x_test, cfg=cfg)

    opt_state = plain_optimizer(learning_rate, cfg).init(init_params)

    def plain_body(carry, order):
        p, s = carry
        p, s, step_losses = plain_epoch(p, s, order, learning_rate, x_train, t_train, cfg=cfg)
        return (p, s), jnp.mean(step_losses)

    (plain_params, _), plain_losses = jax.lax.scan(plain_body, (init_params, opt_state), orders)
    plain_labels = plain_predict(plain_params, x_test, cfg=cfg)
    return {
        "encrypted_loss": enc_losses,
        "plaintext_loss": plain_losses,
        "encrypted_test_accuracy": jnp.mean((labels == y_test).astype(jnp.float64)),
        "plaintext_test_accuracy": jnp.mean((plain_labels == y_test).astype(jnp.float64)),
        "max_param_deviation": max_deviation(state.params, plain_params),
    }


# ---- the same run epoch by epoch, evaluated and timed (what experiments/train.py prints) ------------
HISTORY = ("encrypted_train_loss", "plaintext_train_loss", "encrypted_test_accuracy",
           "plaintext_test_accuracy", "max_param_deviation", "epoch_seconds", "train_seconds",
           "plaintext_train_seconds")


def train(ds: data.Dataset, cfg: Config, *, precision: int, learning_rate: float, epochs: int,
          batch_size: int, seed: int = 0, on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train ``make_model(cfg)`` on ``ds`` encrypted and as the plaintext twin, epoch by epoch.

    The root key ``jaxmpc.key(seed)`` splits into the initial weights', the batch order's, the
    encrypted run's and the evaluations' keys. After every epoch the encrypted model labels the
    shared test set by secure inference, and the twin labels it in plaintext.

    Timing (``time.perf_counter``, each span ended by waiting for its results): per epoch,
    ``train_seconds`` is the encrypted epoch alone, ``epoch_seconds`` the encrypted epoch plus its
    secure inference (the first epoch's includes their compilation), ``plaintext_train_seconds``
    the twin's epoch. ``seconds_per_step`` divides the mean of the epochs after the first (the
    first, when there is only one) by the steps per epoch.

    Args:
        ds: the data set (:func:`jaxmpc.tasks.data.load`).
        cfg: the static configuration (:func:`config_for`).
        precision, learning_rate: fixed-point precision and SGD learning rate.
        epochs, batch_size: epochs, and examples per step (the last partial batch is dropped).
        seed: root PRNG seed.
        on_epoch: called as ``on_epoch(e, history)`` after epoch ``e`` (0-based), e.g. to show
            progress; ``history`` holds the lists of :data:`HISTORY` so far.
    Returns:
        dict of ``steps_per_epoch``; ``encrypted_test_accuracy``, ``plaintext_test_accuracy``,
        ``final_max_param_deviation`` (after the last epoch); ``secure_inference_agreement``
        (the fraction of the secure labels equal to the revealed model's plaintext argmax, a
        diagnostic of the simulator); ``epochs`` (the history, one entry per epoch);
        ``step_losses`` (``encrypted`` and ``plaintext``, every step); ``step_cost`` and
        ``inference_cost`` (:class:`jaxmpc.CostReport` of one training step, loss reveal
        included, and of the secure inference on the test set); ``seconds_per_step``
        (``encrypted``, ``plaintext``, ``ratio``, ``includes_compile``) and
        ``first_epoch_seconds_incl_compile``.
    """
    if not 1 <= batch_size <= ds.n_train:
        raise InputTypeError(f"batch_size must be in 1..{ds.n_train} (the training set size), got "
                             f"{batch_size}.")
    if epochs < 1:
        raise InputTypeError(f"epochs must be at least 1, got {epochs}.")
    t_train, lr = data.one_hot(ds.y_train, ds.n_classes), jnp.float64(learning_rate)
    x_train, x_test = model_inputs(cfg, jnp.asarray(ds.x_train)), model_inputs(cfg, jnp.asarray(ds.x_test))

    k_init, k_order, k_mpc, k_eval = jax.random.split(make_key(seed), 4)
    init_params = make_model(cfg).init(k_init)
    orders = batch_orders(k_order, epochs, ds.n_train, batch_size)
    n_batches = int(orders.shape[1])
    eval_keys = jax.random.split(k_eval, epochs)

    run_setup = run_config.jit(
        lambda k, prec: setup(k, prec, init_params, x_train, t_train, x_test, cfg=cfg))
    run_epoch = run_config.jit(lambda s, o: epoch(s, o, lr, cfg=cfg))
    run_predict = run_config.jit(lambda k, p, x: predict(k, p, x, cfg=cfg))
    deviation = jax.jit(max_deviation)
    p_epoch = jax.jit(lambda p, s, o: plain_epoch(p, s, o, lr, x_train, jnp.asarray(t_train), cfg=cfg))
    p_predict = jax.jit(lambda p, x: plain_predict(p, x, cfg=cfg))

    state = run_setup(k_mpc, jnp.int32(precision))
    plain_params, plain_state = init_params, plain_optimizer(lr, cfg).init(init_params)

    # cost of one training step and of the secure test-set inference (traced, nothing runs)
    idx0 = orders[0, 0]

    def step_and_reveal_loss(k, p, s, xb, tb):  # one iteration of the training loop's body
        p, s, loss = step(k, p, s, xb, tb, lr, cfg=cfg)
        return p, s, reveal(loss)

    step_cost = accounting.cost(step_and_reveal_loss, make_key(0), state.params, state.opt_state,
                                state.x[idx0], state.t[idx0])
    infer_cost = accounting.cost(lambda k, p, x: predict(k, p, x, cfg=cfg),
                                 make_key(1), state.params, state.x_test)

    hist = {k: [] for k in HISTORY}
    step_losses = {"encrypted": [], "plaintext": []}
    compile_s = 0.0
    for e in range(epochs):
        t0 = time.perf_counter()
        state, enc_l = run_epoch(state, orders[e])
        enc_l = np.asarray(enc_l)
        hist["train_seconds"].append(time.perf_counter() - t0)
        labels = np.asarray(run_predict(eval_keys[e], state.params, state.x_test))
        dt = time.perf_counter() - t0
        if e == 0:
            compile_s = dt  # the first epoch includes compilation
        t0 = time.perf_counter()
        plain_params, plain_state, plain_l = jax.block_until_ready(
            p_epoch(plain_params, plain_state, orders[e]))
        hist["plaintext_train_seconds"].append(time.perf_counter() - t0)
        plain_labels = np.asarray(p_predict(plain_params, x_test))
        hist["encrypted_train_loss"].append(float(enc_l.mean()))
        hist["plaintext_train_loss"].append(float(np.mean(plain_l)))
        hist["encrypted_test_accuracy"].append(data.accuracy(labels, ds.y_test))
        hist["plaintext_test_accuracy"].append(data.accuracy(plain_labels, ds.y_test))
        hist["max_param_deviation"].append(float(deviation(state.params, plain_params)))
        hist["epoch_seconds"].append(dt)
        step_losses["encrypted"] += enc_l.tolist()
        step_losses["plaintext"] += np.asarray(plain_l).tolist()
        if on_epoch is not None:
            on_epoch(e, hist)
    # seconds per training step, encrypted and plaintext; epochs after the first (which compiles)
    timed = slice(1, None) if epochs > 1 else slice(0, 1)
    per_step = {
        "encrypted": float(np.mean(hist["train_seconds"][timed])) / n_batches,
        "plaintext": float(np.mean(hist["plaintext_train_seconds"][timed])) / n_batches,
        "includes_compile": epochs == 1,
    }
    per_step["ratio"] = per_step["encrypted"] / per_step["plaintext"]

    # diagnostics of the simulator: the revealed encrypted model evaluated in plaintext
    revealed_labels = np.asarray(p_predict(reveal(state.params), x_test))
    return {
        "steps_per_epoch": n_batches,
        "encrypted_test_accuracy": hist["encrypted_test_accuracy"][-1],
        "plaintext_test_accuracy": hist["plaintext_test_accuracy"][-1],
        "final_max_param_deviation": hist["max_param_deviation"][-1],
        "secure_inference_agreement": float(np.mean(revealed_labels == labels)),
        "epochs": hist,
        "step_losses": step_losses,
        "step_cost": step_cost,
        "inference_cost": infer_cost,
        "seconds_per_step": per_step,
        "first_epoch_seconds_incl_compile": compile_s,
    }


def cost_summary(report: CostReport) -> dict:
    """Rounds, bytes (sent per party, in total, dealt per party) and the LAN / WAN estimates of
    :data:`jaxmpc.LAN` and :data:`jaxmpc.WAN` (a network model, not a measurement)."""
    return {"rounds": report.rounds, "bytes_per_party": report.bytes_per_party,
            "bytes_total": report.bytes_total, "dealer_bytes_per_party": report.dealer_bytes_per_party,
            "lan_seconds": report.estimate(accounting.LAN), "wan_seconds": report.estimate(accounting.WAN)}
