r"""Saving and reloading a fitted choice model: `ChoiceResults` <-> one `.npz` file.

The file holds the arrays (theta, Hessian, the two covariance matrices, standard errors) as
float64 arrays, so they reload bit for bit, and one JSON header (`meta`) with the static model
(family, covariance, method and its settings, the coefficient layout), the specification, the
scalar results and the convergence report. No pickle: `numpy.load(..., allow_pickle=False)`
reads it, and a file from another program or another format version is rejected by name.

A reloaded result is the fitted model: `summary()`, `probabilities(data)`, `shares`,
`elasticities` and `lr_test` give exactly what the original gave.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from .choice_likelihood import ChoiceModel
from .choice_results import ChoiceResults
from .choice_spec import ChoiceSpec, DesignColumn, DesignLayout
from .estimation import Convergence, MLEstimate

__all__ = ["CHOICE_RESULTS_FORMAT", "load_choice_results", "save_choice_results"]

CHOICE_RESULTS_FORMAT = "hetprobit.ChoiceResults/1"
_ARRAYS = ("params", "cov", "robust_cov", "std_err", "robust_std_err", "hessian")


def _meta(results: ChoiceResults) -> dict:
    model = results.model
    settings = {f.name: getattr(model, f.name) for f in dataclasses.fields(model)}
    layout = settings.pop("layout")
    spec = results.spec
    est = results.estimate
    return {
        "format": CHOICE_RESULTS_FORMAT,
        "model": settings,
        "layout": {
            "alternatives": list(layout.alternatives),
            "base": layout.base,
            "columns": [[c.name, c.source, c.index, list(c.mask)] for c in layout.columns],
        },
        "spec": {
            "base": spec.base,
            "generic": list(spec.generic),
            "alternative_specific": [[k, list(v)] for k, v in spec.alternative_specific],
            "individual": [[k, list(v)] for k, v in spec.individual],
            "asc": spec.asc,
        },
        "results": {
            name: getattr(results, name)
            for name in (
                "log_likelihood",
                "log_likelihood_error",
                "objective",
                "null_log_likelihood",
                "fit_seconds",
            )
        },  # fmt: skip
        "warnings": list(results.warnings),
        "estimate": {
            "log_likelihood": est.log_likelihood,
            "num_obs": est.num_obs,
            "singular": bool(est.singular),
            "convergence": {
                **est.convergence._asdict(),
                "start_log_likelihoods": list(est.convergence.start_log_likelihoods),
            },
        },  # fmt: skip
    }


def _plain(value):
    """numpy / jax scalars in the header as Python numbers (exact: float repr round-trips)."""
    if hasattr(value, "item") and np.ndim(value) == 0:
        return value.item()
    raise TypeError(f"cannot save a value of type {type(value).__name__} in the header")


def save_choice_results(results: ChoiceResults, path: str | os.PathLike) -> Path:
    """Write `results` to `path` (a `.npz` file; the suffix is added if missing).

    Returns:
        The path written.

    Raises:
        TypeError: `results` is not a `ChoiceResults`.
    """
    if not isinstance(results, ChoiceResults):
        raise TypeError(f"`results` must be a ChoiceResults, got {type(results).__name__}")
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    est = results.estimate
    arrays = {name: np.asarray(getattr(est, name), np.float64) for name in _ARRAYS}
    arrays["result_params"] = np.asarray(results.params, np.float64)
    header = json.dumps(_meta(results), allow_nan=True, default=_plain)
    np.savez(path, meta=np.array(header), **arrays)
    return path


def load_choice_results(path: str | os.PathLike) -> ChoiceResults:
    """Read a file written by `save_choice_results` (or `ChoiceResults.save`).

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is not a saved `ChoiceResults` of this format version.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            arrays = {name: np.array(f[name]) for name in (*_ARRAYS, "result_params")}
    except FileNotFoundError:
        raise
    except (KeyError, ValueError, OSError, json.JSONDecodeError) as err:
        raise ValueError(f"`path` {str(path)!r} is not a saved ChoiceResults file: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != CHOICE_RESULTS_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(
            f"`path` {str(path)!r} holds format {found!r}, expected {CHOICE_RESULTS_FORMAT!r}"
        )
    lay = meta["layout"]
    columns = tuple(
        DesignColumn(n, s, int(i), tuple(bool(b) for b in m)) for n, s, i, m in lay["columns"]
    )
    layout = DesignLayout(
        columns,
        tuple(lay["alternatives"]),
        int(lay["base"]),
    )
    model = ChoiceModel(layout, **meta["model"])
    sp = meta["spec"]
    spec = ChoiceSpec(
        base=sp["base"],
        generic=tuple(sp["generic"]),
        alternative_specific={k: tuple(v) for k, v in sp["alternative_specific"]},
        individual={k: tuple(v) for k, v in sp["individual"]},
        asc=sp["asc"],
    )
    em = meta["estimate"]
    conv = dict(em["convergence"])
    conv["start_log_likelihoods"] = tuple(conv["start_log_likelihoods"])
    estimate = MLEstimate(
        params=arrays["params"],
        log_likelihood=em["log_likelihood"],
        num_obs=int(em["num_obs"]),
        cov=arrays["cov"],
        robust_cov=arrays["robust_cov"],
        std_err=arrays["std_err"],
        robust_std_err=arrays["robust_std_err"],
        hessian=arrays["hessian"],
        singular=bool(em["singular"]),
        convergence=Convergence(**conv),
    )
    return ChoiceResults(
        model=model,
        spec=spec,
        params=arrays["result_params"],
        estimate=estimate,
        warnings=tuple(meta["warnings"]),
        **meta["results"],
    )
