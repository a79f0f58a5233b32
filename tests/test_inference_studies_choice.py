"""`hetprobit choice`: the study module's command-line shape, its files and its numbers.

Reference: Greene (2003), *Econometric Analysis*, 5th ed., Table 21.11 — conditional logit on the
travel-mode data with gc, ttme, hinc x air and three constants, whose optimum has log-likelihood
-199.128 (the estimates and statsmodels' value are checked in tests/test_models_choice_fit.py);
the quick run must report it.
"""

import csv
import json
import math
import re

import pytest

from inference.cli import main, parse_args
from inference.studies import STUDIES, choice


def _parse(argv):
    return parse_args(["choice", *argv])


def test_registered_as_subcommand():
    assert choice in STUDIES
    args = _parse(["--quick"])
    assert args.study == "choice" and args.models == ("logit",) and args.data == "travel_mode"
    assert _parse([]).models == choice.DEFAULT_MODELS


def test_quick_run_writes_files(tmp_path, capsys):
    assert main(["choice", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    names = {"results.json", "coefficients.csv", "coefficients.md", "choice.png"}
    assert {p.name for p in tmp_path.iterdir()} == names
    assert all((tmp_path / n).stat().st_size > 0 for n in names)
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["study"] == "choice" and payload["config"]["data"] == "travel_mode"
    (fit,) = payload["fits"]
    assert fit["log_likelihood"] == pytest.approx(-199.128, abs=5e-3)  # Greene (2003), Table 21.11
    assert fit["aic"] == pytest.approx(2 * 6 + 2 * 199.128, abs=1e-2)
    with open(tmp_path / "coefficients.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["parameter"] for r in rows] == [
        "asc_air", "asc_train", "asc_bus", "gc", "ttme", "hinc_air"
    ]  # fmt: skip
    for r in rows:
        est, se, lo, hi = (float(r[k]) for k in ("estimate", "std_err", "lower", "upper"))
        assert all(math.isfinite(v) for v in (est, se, lo, hi)) and se > 0
        assert lo == pytest.approx(est - 1.959964 * se) and hi == pytest.approx(est + 1.959964 * se)
    md = (tmp_path / "coefficients.md").read_text()
    assert md.startswith("| parameter | logit |") and "AIC" in md
    # every standard error with three significant digits, trailing zeros kept
    ses = re.findall(r"\(([-0-9.e+]+)\)", md)
    assert len(ses) == 6
    for se in ses:
        digits = se.split("e")[0].replace(".", "").lstrip("0")
        assert len(digits) == 3, ses
    out = capsys.readouterr().out
    assert "log-likelihood (exact)" in out and "-199.128" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--data", "nope"],
        ["--models", "logit,probit"],
        ["--taus", "0.1,-1"],
        ["--taus", "x"],
        ["--mc-samples", "0"],
        ["--draws", "0"],
    ],
)
def test_bad_options_exit_2(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["choice", *argv, "--out", str(tmp_path / "run")])
    assert info.value.code == 2
    assert not (tmp_path / "run").exists()  # rejected before any work
    assert "error: argument --" in capsys.readouterr().err


def test_no_epochs_option_for_maximum_likelihood_fits(tmp_path, capsys):
    """The choice study trains no network: `--epochs` is not offered (argparse rejects it)."""
    with pytest.raises(SystemExit) as info:
        main(["choice", "--epochs", "3", "--out", str(tmp_path / "run")])
    assert info.value.code == 2 and not (tmp_path / "run").exists()
    assert "unrecognized arguments: --epochs" in capsys.readouterr().err
    assert parse_args(["compare", "--epochs", "3"]).epochs == 3


def test_run_choice_rejects_bad_values():
    with pytest.raises(ValueError, match="data"):
        choice.run_choice(data="nope")
    with pytest.raises(ValueError, match="models"):
        choice.run_choice(models=("probit",))
    with pytest.raises(ValueError, match="tau"):
        choice.run_choice(models=("tempered",), taus=(0.0,))
