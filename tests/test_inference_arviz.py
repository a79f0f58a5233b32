"""arviz export of a Bayesian last layer: summary with the expected variables, PNG plots."""

import jax
import numpy as np
import pytest
from numpyro.infer.autoguide import AutoNormal

from inference import Validation, fit, plot_losses, plot_posterior, summarize, to_arviz
from models import classifier_model
from models.synthetic import make_synthetic_classification


@pytest.fixture(scope="module")
def fitted(make_classifier):
    d = make_synthetic_classification(200, 3, num_pairs=1, key=jax.random.key(0))
    net = make_classifier(
        jax.random.key(1), hidden=4, width=8, covariance="diagonal", num_train_samples=8
    )
    guide = AutoNormal(classifier_model)
    res = fit(
        classifier_model,
        guide,
        (d.x, d.y),
        num_epochs=4,
        batch_size=50,
        key=jax.random.key(3),
        net=net,
        prior_scale=1.0,
        progress=False,
        validation=Validation((d.x[:50], d.y[:50])),
    )
    return guide, res


@pytest.fixture(scope="module")
def idata(fitted):
    guide, res = fitted
    return to_arviz(guide, res.params, key=jax.random.key(0), num_samples=100, num_chains=2)


def test_arviz_summary_has_last_layer_variables(fitted, idata):
    guide, res = fitted
    data = idata
    post = data.posterior
    assert set(post.data_vars) == {"net.head.mu.weight", "net.head.mu.bias"}
    assert post["net.head.mu.weight"].shape == (2, 100, 3, 4)
    table = summarize(data)
    assert len(table) == 3 * 4 + 3
    assert "net.head.mu.bias[0]" in table.index and "net.head.mu.weight[2, 3]" in table.index
    assert {"mean", "sd", "r_hat"} <= set(table.columns)
    # draws come from AutoNormal: posterior sd equals the fitted guide scale
    np.testing.assert_allclose(
        table.loc["net.head.mu.bias[0]", "sd"],
        float(res.params["net.head.mu.bias_auto_scale"][0]),
        rtol=0.2,
    )
    with pytest.raises(KeyError, match="no posterior sites"):
        to_arviz(guide, res.params, key=jax.random.key(0), num_samples=5, var_names=["nope"])


def test_plots_are_written_as_png(fitted, idata, tmp_path):
    _, res = fitted
    data = idata
    paths = [
        plot_posterior(data, tmp_path / "forest.png"),
        plot_posterior(data, tmp_path / "trace.png", kind="trace", var_names=["net.head.mu.bias"]),
        plot_losses(res, tmp_path / "loss.png"),
    ]
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="kind"):
        plot_posterior(data, tmp_path / "x.png", kind="pair")
