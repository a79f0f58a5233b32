"""Saving and reloading fitted choice models: the reloaded result is the fitted one, bit for bit.

Reference: the original in-memory `ChoiceResults` (every array compared with `array_equal`,
the printed summary and the predictions on the same data compared exactly). The probit round
trip (noise parameters and the probit settings) is in tests/test_models_choice_fit.py, on a fit
that file already makes.
"""

import json

import numpy as np
import pytest

from models import (
    ChoiceData,
    ChoiceResults,
    ChoiceSpec,
    fit_choice,
    load_choice_results,
    load_travel_mode,
    save_choice_results,
)


def _same(a: ChoiceResults, b: ChoiceResults, data: ChoiceData):
    assert a.model == b.model and a.spec == b.spec and a.names == b.names
    for name in ("params", "cov", "robust_cov", "std_err", "robust_std_err", "hessian"):
        assert np.array_equal(getattr(a.estimate, name), getattr(b.estimate, name)), name
    assert np.array_equal(a.params, b.params)
    assert a.estimate.convergence == b.estimate.convergence
    assert a.warnings == b.warnings
    for name in ("log_likelihood", "log_likelihood_error", "objective", "null_log_likelihood"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.summary() == b.summary()
    assert np.array_equal(a.probabilities(data), b.probabilities(data))


def test_logit_round_trip_is_exact(tmp_path):
    data = load_travel_mode()
    spec = ChoiceSpec(base="car", generic=("gc", "ttme"), individual={"hinc": ("air",)})
    fit = fit_choice(data, spec, family="logit")
    path = fit.save(tmp_path / "sub" / "logit")  # suffix added, folders created
    assert path == tmp_path / "sub" / "logit.npz" and path.exists()
    back = ChoiceResults.load(path)
    _same(fit, back, data)
    np.testing.assert_array_equal(
        back.elasticities(data, "gc"), fit.elasticities(data, "gc")
    )  # fmt: skip


def test_bad_files_and_arguments_are_rejected(tmp_path):
    with pytest.raises(TypeError, match="results"):
        save_choice_results({"params": [1.0]}, tmp_path / "x.npz")
    with pytest.raises(FileNotFoundError):
        load_choice_results(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="other.npz"):
        load_choice_results(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("not a zip file")
    with pytest.raises(ValueError, match="text.npz"):
        load_choice_results(tmp_path / "text.npz")
    arrays = {n: np.zeros(1) for n in ("params", "cov", "robust_cov", "std_err",
                                       "robust_std_err", "hessian", "result_params")}  # fmt: skip
    np.savez(tmp_path / "v0.npz", meta=np.array(json.dumps({"format": "hetprobit.X/0"})), **arrays)
    with pytest.raises(ValueError, match="hetprobit.X/0"):
        load_choice_results(tmp_path / "v0.npz")
