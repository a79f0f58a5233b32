"""Command line: fit a heteroscedastic classifier on scikit-learn's digits and report metrics.

    hetprobit --covariance lowrank --epochs 30 --members 1
    hetprobit --covariance homoscedastic --members 4 --out results.json

Digits (1,797 8x8 images, 10 classes, shipped with scikit-learn) are scaled to [0, 1],
split 70/15/15 (train/validation/test) with a fixed seed, and fitted with an MLP backbone
and a `HeteroscedasticHead` by `inference.fit` (MAP, early stopping on the validation
ELBO) or, with `--members M > 1`, a vmapped Deep Ensemble. Test metrics come from
`hetprobit.metrics`.

Exit status: 0 on success; 2 on a bad option (argparse's convention; checked before any
work, including `--batch-size` against the training split); 1 on an error during the run.
`--out` creates missing parent folders.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "parse_args", "run"]


def _digits(seed: int):
    import numpy as np
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = (x[order] / 16.0).astype(np.float32), y[order].astype(np.int32)
    n_tr, n_va = int(0.7 * len(y)), int(0.15 * len(y))
    return (
        (x[:n_tr], y[:n_tr]),
        (x[n_tr : n_tr + n_va], y[n_tr : n_tr + n_va]),
        (x[n_tr + n_va :], y[n_tr + n_va :]),
    )


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check the options before any work (argparse exits 2 on a bad option).

    Raises:
        SystemExit: with status 2 on a bad option (argparse's convention): a non-positive
            number, `--batch-size` larger than the training split, `--out` a directory.
    """
    from models import COVARIANCE_TYPES

    parser = argparse.ArgumentParser(prog="hetprobit", description=__doc__.split("\n")[0])
    parser.add_argument("--covariance", default="lowrank", choices=list(COVARIANCE_TYPES))
    parser.add_argument("--rank", type=_positive(int), default=3)
    parser.add_argument("--tau", type=_positive(float), default=1.0)
    parser.add_argument("--epochs", type=_positive(int), default=30)
    parser.add_argument("--batch-size", type=_positive(int), default=64)
    parser.add_argument("--lr", type=_positive(float), default=3e-3)
    parser.add_argument("--samples", type=_positive(int), default=32, help="MC samples, training")
    parser.add_argument("--members", type=_positive(int), default=1, help="> 1: Deep Ensemble")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the metrics as JSON here")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    num_train = len(_digits(args.seed)[0][1])
    if args.batch_size > num_train:
        parser.error(
            f"argument --batch-size: {args.batch_size} exceeds the {num_train} training examples"
        )
    if args.out is not None and Path(args.out).is_dir():
        parser.error(f"argument --out: {args.out!r} is a directory; give a file name")
    return args


def run(args: argparse.Namespace) -> dict:
    """Fit and evaluate as `args` say; returns the report (config and test metrics).

    Writes the report to `args.out` (creating its folders) when given.
    """
    import jax

    from models import MLP, Classifier, HeteroscedasticHead, classifier_model

    from .driver import Validation, fit
    from .ensemble import ensemble_predict, fit_ensemble
    from .optim import default_optimizer
    from .predictive import evaluate, predict_log_probs

    train, val, test = _digits(args.seed)

    def make_net(key):
        k1, k2 = jax.random.split(key)
        head = HeteroscedasticHead(
            64,
            10,
            covariance=args.covariance,
            tau=args.tau,
            rank=None if args.covariance in ("homoscedastic", "diagonal") else args.rank,
            num_train_samples=args.samples,
            key=k2,
        )
        return Classifier(MLP(64, 64, width=128, depth=1, key=k1), head)

    key = jax.random.key(args.seed)
    steps = len(train[1]) // args.batch_size
    opt = default_optimizer(args.epochs * steps, learning_rate=args.lr)
    common = dict(
        num_epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=opt,
        progress=not args.no_progress,
    )
    k_init, k_fit, k_pred = jax.random.split(key, 3)
    if args.members > 1:
        ens = fit_ensemble(
            classifier_model,
            None,
            train,
            num_members=args.members,
            key=k_fit,
            member_kwargs=lambda k: {"net": make_net(k)},
            **common,
        )
        pred = ensemble_predict(classifier_model, None, ens, test[0], key=k_pred, inference=True)
        metrics = evaluate(pred.log_probs, test[1])
        metrics["mutual_information"] = float(pred.mutual_information.mean())
        metrics["expected_entropy"] = float(pred.expected_entropy.mean())
    else:
        net = make_net(k_init)
        val = Validation(val, patience=10)
        res = fit(classifier_model, None, train, key=k_fit, validation=val, net=net, **common)
        lp = predict_log_probs(
            classifier_model,
            None,
            res.params,
            test[0],
            key=k_pred,
            net=net,
            inference=True,
            batch_size=128,
        )
        metrics = evaluate(lp, test[1])
        metrics["best_epoch"] = res.best_epoch
    report = {"config": vars(args), "test": metrics}
    print(json.dumps(report, indent=1))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """The `hetprobit` command: returns the exit status, 0 on success (2: bad option).

    Raises:
        SystemExit: status 2 on a bad option (`parse_args`).
    """
    run(parse_args(argv))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
