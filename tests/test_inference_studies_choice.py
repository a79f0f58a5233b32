"""`hetprobit choice`: the study module's command-line shape, its files and its numbers.

Reference: Greene (2012), *Econometric Analysis*, 7th ed., ch. 18 — conditional logit on the
travel-mode data with gc, ttme, hinc x air and three constants: log-likelihood -199.128
(also checked in tests/test_models_choice_fit.py); the quick run must report it.
"""

import argparse
import csv
import json
import math

import pytest

from inference.studies import choice


def _parse(argv):
    """The parser the `hetprobit` command builds for a study: common options + the study's."""
    parser = argparse.ArgumentParser(prog="hetprobit choice")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="hetprobit-choice")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--no-progress", action="store_true")
    choice.add_arguments(parser)
    args = parser.parse_args(argv)
    choice.check_arguments(args, parser)
    return args


def test_quick_run_writes_files(tmp_path, capsys):
    args = _parse(["--quick", "--out", str(tmp_path), "--no-progress"])
    assert args.models == ("logit",)
    results = choice.run(args)
    paths = choice.write(results, tmp_path)
    names = {p.name for p in paths}
    assert names == {"results.json", "coefficients.csv", "coefficients.md", "choice.png"}
    assert all(p.stat().st_size > 0 for p in paths)
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["study"] == "choice" and payload["config"]["data"] == "travel_mode"
    (fit,) = payload["fits"]
    assert fit["log_likelihood"] == pytest.approx(-199.128, abs=5e-3)  # Greene (2012), ch. 18
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
def test_bad_options_exit_2(argv):
    with pytest.raises(SystemExit) as info:
        _parse(argv)
    assert info.value.code == 2


def test_run_choice_rejects_bad_values():
    with pytest.raises(ValueError, match="data"):
        choice.run_choice(data="nope")
    with pytest.raises(ValueError, match="models"):
        choice.run_choice(models=("probit",))
    with pytest.raises(ValueError, match="tau"):
        choice.run_choice(models=("tempered",), taus=(0.0,))
