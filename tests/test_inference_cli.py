"""The `hetprobit` command (`inference.cli`): defaults, bad options exit 2 before any work,
the real process's exit status and each subcommand's help.

Each subcommand run in full (exit 0, its documented files and fields): the bare command
(`compare --quick`) in test_inference_studies_compare.py and `hetprobit bias` in
test_inference_studies_bias.py, where each run shares its fits with the study's own checks."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inference.cli import main, parse_args
from inference.studies.compare import DEFAULT_METHODS, QUICK_METHODS
from inference.studies.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--epochs", "-1"], "--epochs: must be > 0"),
        (["compare", "--epochs", "x"], "--epochs: expected an int"),
        (["--methods", "low_rank,nope"], "--methods: unknown method(s) ['nope']"),
        (["--methods", ","], "--methods: expected a comma-separated list"),
        (["--noise-rate", "0.6"], "--noise-rate: must lie in [0, 0.5]"),
        (["--noise-rate", "-0.1"], "--noise-rate: must lie in [0, 0.5]"),
        (["compare", "--members", "0"], "--members: must be > 0"),
        (["bias", "--taus", "0.1,0"], "--taus: every tau must be > 0"),
        (["bias", "--samples", "16,x"], "--samples: expected comma-separated integers"),
        (["bias", "--classes", "3,12"], "--classes: each K must lie in [2, 10]"),
        (["frobnicate"], "unknown study 'frobnicate'; choose from compare, bias, choice"),
        (["--quick", "frobnicate"], "unrecognized arguments: frobnicate"),  # compare's options
    ],
)
def test_bad_options_are_argparse_errors_before_any_work(argv, match, capsys):
    t0 = time.perf_counter()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and match in capsys.readouterr().err
    assert time.perf_counter() - t0 < 5  # nothing was fitted


def test_out_pointing_at_a_file_is_rejected(tmp_path, capsys):
    path = tmp_path / "a_file"
    path.write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["bias", "--out", str(path)])
    assert exc.value.code == 2 and "is a file" in capsys.readouterr().err


def test_real_command_exit_status_2_and_help_shows_defaults(capsys):
    """One real process (it pays the JAX import once): the exit status a shell sees; the
    help text is argparse's own output, checked in-process."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    bad = subprocess.run(
        [sys.executable, "-m", "inference.cli", "--noise-rate", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "--noise-rate" in bad.stderr
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "With no study, hetprobit runs compare." in " ".join(capsys.readouterr().out.split())
    for sub, expected in (("compare", "(default: 0.3)"), ("bias", "None: (3, 5), quick (3,)")):
        with pytest.raises(SystemExit) as exc:
            main([sub, "--help"])
        assert exc.value.code == 0 and expected in " ".join(capsys.readouterr().out.split())


def test_defaults_and_method_lists():
    args = parse_args([])
    assert args.study == "compare" and args.methods == DEFAULT_METHODS and not args.quick
    assert DEFAULT_METHODS == tuple(METHODS)  # every method, the untempered probit included
    assert parse_args(["--quick"]).methods == QUICK_METHODS
    assert parse_args(["--methods", "probit"]).methods == ("probit",)
    args = parse_args(["compare", "--methods", "low_rank, mbls", "--noise-rate", "0"])
    assert args.methods == ("low_rank", "mbls") and args.noise_rate == 0.0
    quick = parse_args(["bias", "--quick"])
    assert quick.taus == (0.1, 1.0) and quick.samples == (16,) and quick.classes == (3,)
    assert parse_args(["bias"]).classes == (3, 5)
