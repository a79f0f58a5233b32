r"""The methods of `hetprobit compare` and the noisy-digits task they are fitted on.

Task (`noisy_digits`): scikit-learn's digits (1,797 8x8 images, pixels / 16), a seeded
60 / 20 / 20 split into train / validation / test; label noise from
`models.label_noise.inject_label_noise` on the train and validation splits only (confusable
pairs chosen on the training split and shared by both); test labels stay clean.

Every method uses the same backbone, an MLP 64 -> 128 -> 64 (GELU), and the same fit:
MAP by SVI (`inference.fit`: AdamW with warm-up and cosine decay), early stopping on the
noisy validation split's negative ELBO. Predictions on the test split use the head's
evaluation Monte Carlo setting. Methods and their sources (`METHODS`):

- homoscedastic: softmax cross-entropy (the baseline).
- diagonal_tau1: diagonal heteroscedastic noise at tau = 1 (Kendall & Gal 2017,
  arXiv:1703.04977).
- diagonal_tuned: diagonal noise, tau chosen by the noisy validation NLL over a small grid
  (Collier et al. 2020, arXiv:2003.06778).
- low_rank, parameter_efficient: Collier et al. 2021, arXiv:2105.10305.
- hetxl: Collier et al. 2023, arXiv:2301.12860.
- probit: the untempered probit estimator (`hetprobit.probit_log_probs`): the low-rank
  head with `likelihood="probit"`.
- taylor: the low-rank head trained by Monte Carlo (the same fit as low_rank), predictions
  by the deterministic second-order Taylor formula (`hetprobit.taylor_softmax_probs`,
  Collier et al. 2021, Appendix C) instead of Monte Carlo; the approximation may leave
  [0, 1], so probabilities are clipped at 1e-12 and renormalised (the clipped fraction is
  reported).
- mbls: homoscedastic head trained with margin-based label smoothing (Liu et al. 2022,
  arXiv:2111.15430).
- temp_scaled: the homoscedastic fit, its logits divided by a temperature fitted on the
  noisy validation NLL (Guo et al. 2017, arXiv:1706.04599).
- ensemble_homoscedastic, ensemble_low_rank: Deep Ensembles of M members
  (Lakshminarayanan et al. 2017, arXiv:1612.01474), members trained under `jax.vmap`.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import hetprobit as hp
from models import MLP, Classifier, HeteroscedasticHead, classifier_model
from models.label_noise import LabelNoise, confusable_pairs, inject_label_noise

from ..driver import Validation, fit
from ..ensemble import ensemble_predict, fit_ensemble
from ..optim import default_optimizer

__all__ = [
    "METHODS",
    "FitConfig",
    "Method",
    "NoisyDigits",
    "Prediction",
    "fit_method",
    "noisy_digits",
]

NUM_CLASSES = 10


class Method(NamedTuple):
    """A row of the comparison: display label, source paper, and how it is fitted."""

    label: str
    source: str
    covariance: str | None


METHODS: dict[str, Method] = {
    "homoscedastic": Method("Softmax (homoscedastic)", "standard cross-entropy", "homoscedastic"),
    "diagonal_tau1": Method(
        "Diagonal, tau = 1", "Kendall & Gal 2017, arXiv:1703.04977", "diagonal"
    ),
    "diagonal_tuned": Method(
        "Diagonal, tuned tau", "Collier et al. 2020, arXiv:2003.06778", "diagonal"
    ),
    "low_rank": Method("Low-rank", "Collier et al. 2021, arXiv:2105.10305", "low_rank"),
    "parameter_efficient": Method(
        "Parameter-efficient", "Collier et al. 2021, arXiv:2105.10305", "parameter_efficient"
    ),
    "hetxl": Method("HET-XL", "Collier et al. 2023, arXiv:2301.12860", "hetxl"),
    "probit": Method(
        "Untempered probit",
        "exact 1-D quadrature: Girolami & Rogers 2006, Neural Comput. 18(8)",
        "low_rank",
    ),
    "taylor": Method(
        "Taylor (2nd order)", "Collier et al. 2021, arXiv:2105.10305, App. C", "low_rank"
    ),
    "mbls": Method("MbLS", "Liu et al. 2022, arXiv:2111.15430", "homoscedastic"),
    "temp_scaled": Method(
        "Temperature-scaled softmax", "Guo et al. 2017, arXiv:1706.04599", "homoscedastic"
    ),
    "ensemble_homoscedastic": Method(
        "Deep Ensemble, softmax", "Lakshminarayanan et al. 2017, arXiv:1612.01474", "homoscedastic"
    ),
    "ensemble_low_rank": Method(
        "Deep Ensemble, low-rank", "Lakshminarayanan et al. 2017, arXiv:1612.01474", "low_rank"
    ),
}


class NoisyDigits(NamedTuple):
    """Digits with injected label noise on train and validation (module docstring).

    Attributes:
        train, val, test: `(x, y)` with x `(N, 64)` float32 in [0, 1], y `(N,)` int32;
            train / val labels noisy, test labels clean.
        train_noise, val_noise: the `LabelNoise` truth of each noisy split.
    """

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    train_noise: LabelNoise
    val_noise: LabelNoise


def noisy_digits(*, seed: int, noise_rate: float, num_pairs: int = 3) -> NoisyDigits:
    """Load digits, split 60/20/20 (seeded) and inject label noise on train / validation.

    Raises:
        ValueError: `noise_rate` outside [0, 0.5] (`inject_label_noise`).
    """
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = (x[order] / 16.0).astype(np.float32), y[order].astype(np.int32)
    n_tr, n_va = int(0.6 * len(y)), int(0.2 * len(y))
    tr, va, te = slice(0, n_tr), slice(n_tr, n_tr + n_va), slice(n_tr + n_va, None)
    pairs = confusable_pairs(x[tr], y[tr], num_pairs=num_pairs)
    noise_tr = inject_label_noise(x[tr], y[tr], rate=noise_rate, seed=seed, pairs=pairs)
    noise_va = inject_label_noise(x[va], y[va], rate=noise_rate, seed=seed + 1, pairs=pairs)
    return NoisyDigits(
        (x[tr], noise_tr.labels), (x[va], noise_va.labels), (x[te], y[te]), noise_tr, noise_va
    )


class FitConfig(NamedTuple):
    """Sizes shared by every method (the CLI's `--quick` picks smaller ones)."""

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 3e-3
    width: int = 128
    features: int = 64
    rank: int = 3
    train_samples: int = 32
    eval_samples: int = 512
    patience: int = 5
    members: int = 4
    tau_grid: tuple[float, ...] = (0.1, 0.3, 1.0)


class Prediction(NamedTuple):
    """Test-set output of one method: log-probabilities `(N, K)`, fit time and extras."""

    log_probs: np.ndarray
    fit_s: float
    extra: dict
    net: Classifier | None = None


def make_net(
    key, covariance: str, config: FitConfig, *, tau: float = 1.0, likelihood: str = "tempered"
) -> Classifier:
    """The shared MLP backbone with a `HeteroscedasticHead` of the given covariance
    (`likelihood`: the head's likelihood option, "tempered" or "probit")."""
    k_backbone, k_head = jax.random.split(key)
    has_rank = covariance in ("low_rank", "parameter_efficient", "hetxl")
    head = HeteroscedasticHead(
        config.features,
        NUM_CLASSES,
        covariance=covariance,
        tau=tau,
        rank=config.rank if has_rank else None,
        num_train_samples=config.train_samples,
        num_eval_samples=config.eval_samples,
        key=k_head,
        likelihood=likelihood,
    )
    backbone = MLP(64, config.features, width=config.width, depth=1, key=k_backbone)
    return Classifier(backbone, head)


def _fit_kwargs(task: NoisyDigits, config: FitConfig, progress: bool) -> dict:
    steps = len(task.train[1]) // config.batch_size
    return dict(
        num_epochs=config.epochs,
        batch_size=config.batch_size,
        optimizer=default_optimizer(config.epochs * steps, learning_rate=config.learning_rate),
        validation=Validation(task.val, patience=config.patience),
        progress=progress,
    )


def fitted_net(net: Classifier, params: dict) -> Classifier:
    """The network with the fitted parameters (`FitResult.params["net$params"]`)."""
    return eqx.combine(params["net$params"], eqx.partition(net, eqx.is_inexact_array)[1])


def _fit_single(
    task, config, covariance, *, key, tau=1.0, likelihood="tempered", progress=False, **model_kwargs
):
    k_init, k_fit = jax.random.split(key)
    net = make_net(k_init, covariance, config, tau=tau, likelihood=likelihood)
    t0 = time.perf_counter()
    res = fit(
        classifier_model,
        None,
        task.train,
        key=k_fit,
        net=net,
        **_fit_kwargs(task, config, progress),
        **model_kwargs,
    )
    return fitted_net(net, res.params), res, time.perf_counter() - t0


def _log_probs(net, x, key) -> np.ndarray:
    r = jax.vmap(net.backbone)(jnp.asarray(x))
    return np.asarray(net.head.log_probs(r, key=key, inference=True))


def fit_method(
    name: str,
    task: NoisyDigits,
    config: FitConfig,
    *,
    key,
    cache: dict | None = None,
    progress: bool = False,
) -> Prediction:
    """Fit method `name` on `task.train` and predict `task.test` (module docstring).

    `cache` (a dict) shares fits between methods that reuse one (homoscedastic and
    temp_scaled; low_rank and taylor; diagonal_tau1 and diagonal_tuned's tau = 1); a shared
    fit's time is counted in each method that uses it. Entries are keyed by the method's
    settings and `config`, so one cache serves one task and one `key`.

    Raises:
        KeyError: an unknown method name.
    """
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    cache = {} if cache is None else cache
    k_fit, k_pred = jax.random.split(key)
    x_te = task.test[0]

    def single(cov, tau=1.0, **kw):
        tag = (cov, float(tau), tuple(sorted(kw.items())), config)
        if tag not in cache:
            net, res, secs = _fit_single(
                task, config, cov, key=k_fit, tau=tau, progress=progress, **kw
            )
            cache[tag] = (net, res, secs)
        return cache[tag]

    if name in ("homoscedastic", "diagonal_tau1", "low_rank", "parameter_efficient", "hetxl"):
        net, res, secs = single(METHODS[name].covariance)
        return Prediction(_log_probs(net, x_te, k_pred), secs, {"best_epoch": res.best_epoch}, net)
    if name == "mbls":
        net, res, secs = single("homoscedastic", loss="mbls")
        return Prediction(_log_probs(net, x_te, k_pred), secs, {"best_epoch": res.best_epoch}, net)
    if name == "diagonal_tuned":
        val_nll, total = {}, 0.0
        for tau in config.tau_grid:
            net, _, secs = single("diagonal", tau)
            total += secs
            lp = _log_probs(net, task.val[0], k_pred)
            val_nll[float(tau)] = float(hp.negative_log_likelihood(lp, task.val[1]))
        best = min(val_nll, key=val_nll.get)
        net, _, _ = single("diagonal", best)
        extra = {"tau": best, "val_nll_by_tau": val_nll}
        return Prediction(_log_probs(net, x_te, k_pred), total, extra, net)
    if name == "temp_scaled":
        net, _, secs = single("homoscedastic")
        t0 = time.perf_counter()
        temp = hp.fit_temperature_scaling(_log_probs(net, task.val[0], k_pred), task.val[1])
        logits = hp.apply_temperature_scaling(_log_probs(net, x_te, k_pred), temp)
        lp = np.asarray(jax.nn.log_softmax(logits, axis=-1))
        return Prediction(lp, secs + time.perf_counter() - t0, {"temperature": float(temp)}, net)
    if name == "taylor":
        net, _, secs = single("low_rank")
        mu, noise = net.head.noise_parameters(jax.vmap(net.backbone)(jnp.asarray(x_te)))
        probs = np.asarray(hp.taylor_softmax_probs(mu, noise, tau=float(net.head.tau)))
        clipped = float(np.mean((probs < 1e-12) | (probs > 1.0)))
        probs = np.clip(probs, 1e-12, 1.0)
        lp = np.log(probs / probs.sum(axis=-1, keepdims=True))
        return Prediction(lp, secs, {"clipped_fraction": clipped}, net)
    if name == "probit":
        net, res, secs = single("low_rank", likelihood="probit")
        return Prediction(_log_probs(net, x_te, k_pred), secs, {"best_epoch": res.best_epoch}, net)
    # Deep Ensembles
    cov = METHODS[name].covariance
    t0 = time.perf_counter()
    kw = _fit_kwargs(task, config, progress)
    ens = fit_ensemble(
        classifier_model,
        None,
        task.train,
        num_members=config.members,
        key=k_fit,
        member_kwargs=lambda k: {"net": make_net(k, cov, config)},
        **kw,
    )
    secs = time.perf_counter() - t0
    pred = ensemble_predict(classifier_model, None, ens, x_te, key=k_pred, inference=True)
    extra = {
        "members": config.members,
        "mutual_information": float(jnp.mean(pred.mutual_information)),
        "expected_entropy": float(jnp.mean(pred.expected_entropy)),
    }
    return Prediction(np.asarray(pred.log_probs), secs, extra, None)
