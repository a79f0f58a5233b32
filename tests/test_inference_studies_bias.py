"""`inference.studies.bias`: relaxation bias against the exact probit (hetprobit.exact) and the
gradient variance of the tempered estimator, on a tiny grid.

Expected behaviour (Collier et al. 2020, arXiv:2003.06778): the tempered estimate's bias
shrinks as tau -> 0 while its gradient variance grows; the gradient variance of a mean of S
i.i.d. draws falls roughly like 1/S.
"""

import contextlib
import io
import json
import math

import numpy as np
import pytest

from inference import cli
from inference.studies.bias import BiasResults, format_bias, run_bias, write_bias

# One run, shared by every test below, through the command's own path (`hetprobit bias
# --quick` sizes: K = 3, N = 128, batch 64, a 1-epoch fit, 8 gradient keys) on a 2 x 2 grid.
ARGV = ["bias", "--quick", "--taus", "0.05,1", "--samples", "16,128", "--no-progress"]


@pytest.fixture(scope="module")
def command(tmp_path_factory):
    """(results, out folder, printed report) of `hetprobit bias` run in-process."""
    out = tmp_path_factory.mktemp("bias") / "new" / "bias"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        results = cli.run(cli.parse_args([*ARGV, "--out", str(out)]))
    return results, out, printed.getvalue()


@pytest.fixture(scope="module")
def results(command):
    return command[0]


def _row(results, tau, S, estimator="tempered"):
    (row,) = [
        r
        for r in results.rows
        if r["tau"] == tau and r["num_samples"] == S and r["estimator"] == estimator
    ]
    return row


def test_bias_smaller_at_small_tau_and_variance_larger(results):
    assert isinstance(results, BiasResults)
    for S in (16, 128):
        small, large = _row(results, 0.05, S), _row(results, 1.0, S)
        # at tau = 1 the softmax is far from the argmax: measured 0.10 vs 0.03 (S = 128)
        assert small["bias"] < 0.7 * large["bias"]
        assert small["grad_variance"] > 5 * large["grad_variance"]
    # more draws: less Monte Carlo variance of the gradient (~1/S; measured ratio ~8 for 8x S)
    assert _row(results, 1.0, 128)["grad_variance"] < 0.5 * _row(results, 1.0, 16)["grad_variance"]


def test_rows_fields_and_finite(results, tmp_path):
    tempered = [r for r in results.to_rows() if r["estimator"] == "tempered"]
    assert len(tempered) == 4
    for r in results.to_rows():
        assert r["num_classes"] == 3
        assert 0 <= r["bias"] <= r["max_bias"] <= 1
        assert math.isfinite(r["grad_variance"]) and r["grad_variance"] > 0
    payload = results.to_json()
    assert payload["study"] == "bias" and payload["config"]["classes"] == [3]
    assert payload["config"]["num_data"] == 128 and payload["config"]["fit_epochs"] == 1
    paths = write_bias(results, tmp_path / "out")
    assert [p.name for p in paths] == ["results.json", "bias.png"]
    assert "mean |p - p_exact|" in format_bias(results)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"taus": (0.1, 0.0)}, "taus"),
        ({"num_samples_grid": (0,)}, "num_samples_grid"),
        ({"classes": (11,)}, "classes"),
        ({"num_data": 8, "batch_size": 16}, "num_data"),
    ],
)
def test_bad_grids_rejected_before_work(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_bias(**kwargs)


def test_bias_of_tempered_estimate_matches_a_direct_computation(results):
    """Independent reference: the first row's bias recomputed from the exact probit."""
    import jax
    import jax.numpy as jnp

    from hetprobit import tempered_softmax_log_probs
    from hetprobit.exact import exact_choice_probs
    from hetprobit.noise import LowRankNoise
    from models import make_synthetic_classification

    # the study's data for K = 3 (keys as in `run_bias`)
    key = jax.random.fold_in(jax.random.key(0), 3)
    k_data, _, _, k_bias, _ = jax.random.split(key, 5)
    data = make_synthetic_classification(128, 3, num_pairs=1, key=k_data)
    noise = LowRankNoise(data.scale, data.factor)
    exact = exact_choice_probs(data.mu, jnp.broadcast_to(noise.covariance(), (128, 3, 3)))
    p = jnp.exp(tempered_softmax_log_probs(data.mu, noise, key=k_bias, tau=1.0, num_samples=16))
    expected = float(jnp.mean(jnp.abs(p - exact)))
    np.testing.assert_allclose(_row(results, 1.0, 16)["bias"], expected, rtol=1e-5)


def test_untempered_estimator_is_the_tau_0_point(results):
    probit = [r for r in results.rows if r["estimator"] == "probit"]
    assert sorted(r["num_samples"] for r in probit) == [16, 128]
    for r in probit:
        assert r["tau"] == 0.0
        # no relaxation: far below the tempered bias at tau = 1 (and at tau = 0.05, which
        # still carries Monte Carlo error ~ 1/sqrt(S))
        assert r["bias"] < 0.5 * _row(results, 0.05, r["num_samples"])["bias"]


def test_command_writes_results_json_figure_and_report(command):
    """`hetprobit bias` writes results.json (the rows, finite) and bias.png, and prints the
    table with its legend."""
    results, out, printed = command
    report = json.loads((out / "results.json").read_text())
    assert report["study"] == "bias" and report["rows"] == results.to_rows()
    tempered = [r for r in report["rows"] if r["estimator"] == "tempered"]
    assert {(r["tau"], r["num_samples"]) for r in tempered} == {
        (t, s) for t in (0.05, 1.0) for s in (16, 128)
    }
    for r in report["rows"]:
        assert {"tau", "num_samples", "bias", "grad_variance", "num_classes", "estimator"} <= set(r)
        assert r["num_classes"] == 3 and r["estimator"] in ("tempered", "probit")
        assert math.isfinite(r["bias"]) and r["bias"] >= 0
        assert math.isfinite(r["grad_variance"])
    assert {r["tau"] for r in report["rows"] if r["estimator"] == "probit"} == {0.0}
    assert (out / "bias.png").stat().st_size > 0
    assert "mean |p - p_exact|" in printed and "wrote 2 files" in printed
