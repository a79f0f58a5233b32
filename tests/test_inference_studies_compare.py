"""`inference.studies.compare` / `methods`: the noisy-digits task (noise on train and
validation only, test labels clean and equal to scikit-learn's), and the methods whose
prediction protocol is a formula on top of a fit (temperature scaling, Taylor), checked
against direct computations."""

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

import hetprobit as hp
from inference import cli
from inference.studies import compare
from inference.studies.compare import (
    QUICK_METHODS,
    CompareResults,
    config_from_args,
    format_compare,
    run_compare,
)
from inference.studies.methods import (
    METHODS,
    fit_method,
    noisy_digits,
)

# the sizes of `hetprobit --quick` (3 epochs, S = 8, 64 eval samples, 2 members), so that one
# cache of fits serves the command's run and the protocol checks below
TINY = config_from_args(cli.parse_args(["--quick"]))
ROW_FIELDS = ("method", "nll", "ece", "accuracy", "brier", "fit_s")


def test_noise_only_on_train_and_validation():
    task = noisy_digits(seed=3, noise_rate=0.3)
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(3).permutation(len(y))
    n_te = len(task.test[1])
    # test labels are sklearn's own labels of the same images: clean
    np.testing.assert_array_equal(task.test[1], y[order][-n_te:])
    np.testing.assert_allclose(task.test[0], x[order][-n_te:] / 16.0)
    for split, noise in ((task.train, task.train_noise), (task.val, task.val_noise)):
        np.testing.assert_array_equal(split[1], noise.labels)
        changed = split[1] != noise.clean
        assert changed.any()  # noise was injected
        np.testing.assert_array_equal(changed, noise.swapped)
        # only within the injected pairs, and only into the partner class
        partner = {a: b for p in noise.pairs for a, b in (p, p[::-1])}
        for clean, noisy in zip(noise.clean[changed], split[1][changed], strict=True):
            assert partner[int(clean)] == int(noisy)
    assert task.train_noise.pairs == task.val_noise.pairs
    assert len(task.train[1]) + len(task.val[1]) + n_te == len(y)
    # rate 0: no noise at all
    clean = noisy_digits(seed=3, noise_rate=0.0)
    np.testing.assert_array_equal(clean.train[1], clean.train_noise.clean)


@pytest.fixture(scope="module")
def task():
    return noisy_digits(seed=0, noise_rate=0.3)


@pytest.fixture(scope="module")
def cache():
    return {}  # fits shared by the tests below (same task, config and key)


def test_temperature_scaling_and_taylor_protocols(task, cache):
    key = jax.random.key(0)
    homo = fit_method("homoscedastic", task, TINY, key=key, cache=cache)
    scaled = fit_method("temp_scaled", task, TINY, key=key, cache=cache)
    assert scaled.net is homo.net  # the temperature-scaled model reuses the homoscedastic fit
    T = scaled.extra["temperature"]
    # reference: Guo et al. 2017, softmax(logits / T) with T fitted on the noisy validation
    val_lp = fit_method("homoscedastic", task, TINY, key=key, cache=cache).net
    r_val = jax.vmap(val_lp.backbone)(jnp.asarray(task.val[0]))
    logits_val = val_lp.head.log_probs(r_val)
    np.testing.assert_allclose(T, float(hp.fit_temperature_scaling(logits_val, task.val[1])))
    np.testing.assert_allclose(
        scaled.log_probs, jax.nn.log_softmax(homo.log_probs / T, axis=-1), atol=1e-5
    )
    nll = lambda lp, y: float(hp.negative_log_likelihood(lp, y))  # noqa: E731
    assert nll(jax.nn.log_softmax(logits_val / T), task.val[1]) <= nll(logits_val, task.val[1])

    lr = fit_method("low_rank", task, TINY, key=key, cache=cache)
    taylor = fit_method("taylor", task, TINY, key=key, cache=cache)
    assert taylor.net is lr.net and len(cache) == 2  # Taylor reuses the low-rank fit
    mu, noise = lr.net.head.noise_parameters(jax.vmap(lr.net.backbone)(jnp.asarray(task.test[0])))
    p = np.clip(np.asarray(hp.taylor_softmax_probs(mu, noise, tau=1.0)), 1e-12, 1.0)
    np.testing.assert_allclose(
        np.exp(taylor.log_probs), p / p.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(np.exp(taylor.log_probs).sum(-1), 1.0, atol=1e-5)


def test_run_compare_rows_and_report(task, cache):
    res = run_compare(seed=0, methods=("homoscedastic", "low_rank"), config=TINY, cache=cache)
    assert isinstance(res, CompareResults)
    assert [r["method"] for r in res.to_rows()] == ["homoscedastic", "low_rank"]
    for row in res.rows:
        probs = res.probs[row["method"]]
        y = res.test_labels
        # the row's metrics are the metrics of the stored probabilities (clean test labels)
        np.testing.assert_allclose(row["accuracy"], np.mean(probs.argmax(-1) == y), atol=1e-6)
        np.testing.assert_allclose(
            row["brier"], np.mean(((probs - np.eye(10)[y]) ** 2).sum(-1)), rtol=1e-5
        )
        np.testing.assert_allclose(
            row["nll"], -np.mean(np.log(probs[np.arange(len(y)), y])), rtol=1e-4
        )
        assert row["source"] == METHODS[row["method"]].source
    assert res.pairs is not None and res.pairs.method == "low_rank"
    assert 0 <= res.pairs.scores["recall_at_P"] <= 1
    assert "recovery" in format_compare(res)
    with pytest.raises(KeyError, match="unknown method"):
        run_compare(methods=("nope",), config=TINY)


def test_bare_command_is_compare_quick_and_writes_the_documented_files(
    tmp_path, capsys, monkeypatch, cache
):
    """`hetprobit --quick` (no subcommand: compare) through `cli.main`; the only change is
    the fit cache handed to `run_compare`, shared with the tests above (same seed, noise
    rate and sizes: the same fits)."""
    monkeypatch.setattr(compare, "run_compare", functools.partial(run_compare, cache=cache))
    out = tmp_path / "new" / "compare"
    assert cli.main(["--quick", "--no-progress", "--out", str(out)]) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["study"] == "compare" and report["config"]["fit"] == json.loads(
        json.dumps(TINY._asdict())
    )
    assert [r["method"] for r in report["rows"]] == list(QUICK_METHODS)
    for row in report["rows"]:
        assert set(ROW_FIELDS) <= set(row)
        assert all(
            isinstance(row[k], int | float) and math.isfinite(row[k]) for k in ROW_FIELDS[1:]
        )
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["ece"] <= 1 and 0 <= row["brier"] <= 2
        assert row["accuracy"] > 0.5  # 10 classes, 3 epochs; measured ~0.8
        assert (out / f"reliability_{row['method']}.png").stat().st_size > 0
    assert (out / "reliability.png").exists() and (out / "pairs.png").exists()
    cfg = report["config"]
    assert cfg["noise_rate"] == 0.3 and cfg["seed"] == 0 and cfg["data"]["test_labels"] == "clean"
    assert set(report["legend"]) == {"accuracy", "nll", "ece", "brier", "fit_s"}
    pairs = report["pairs"]
    assert pairs["method"] == "low_rank"
    assert sorted(map(tuple, pairs["true_pairs"])) == sorted(map(tuple, cfg["data"]["noisy_pairs"]))
    for score in pairs["recovery"].values():
        assert 0.0 <= score <= 1.0
    printed = capsys.readouterr().out
    assert "top-1" in printed and "15 equal-width" in printed and "recovery:" in printed
