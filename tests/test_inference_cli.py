"""The `hetprobit` command (`inference.cli`): exit 0 on success with the report written
(parent folders created), exit 2 on bad options before any work."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inference.cli import main, parse_args
from models import COVARIANCE_TYPES

ROOT = Path(__file__).resolve().parents[1]


def _command(*args):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.run(
        [sys.executable, "-m", "inference.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_successful_run_exits_0_and_writes_report(tmp_path):
    out = tmp_path / "new" / "folder" / "digits.json"
    proc = _command(
        "--covariance", "homoscedastic", "--epochs", "3", "--no-progress", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["test"]["accuracy"] > 0.8  # 10 classes; measured 0.93 after 3 epochs
    assert report["config"]["epochs"] == 3
    assert json.loads(proc.stdout) == report  # printed once, on stdout


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--epochs", "-1"], "--epochs: must be > 0"),
        (["--members", "0"], "--members: must be > 0"),
        (["--batch-size", "5000"], "--batch-size: 5000 exceeds the 1257 training"),
        (["--samples", "x"], "--samples: expected a int"),
        (["--covariance", "full-rank"], "--covariance: invalid choice"),
    ],
)
def test_bad_options_are_argparse_errors_before_any_work(argv, match, capsys):
    t0 = time.perf_counter()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and match in capsys.readouterr().err
    assert time.perf_counter() - t0 < 5  # nothing was fitted


def test_out_pointing_at_a_directory_is_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path)])
    assert exc.value.code == 2 and "is a directory" in capsys.readouterr().err
    proc = _command("--out", str(tmp_path))  # the real command: exit status 2
    assert proc.returncode == 2 and "--out" in proc.stderr


def test_covariance_choices_come_from_the_registry():
    for name in COVARIANCE_TYPES:
        assert parse_args(["--covariance", name]).covariance == name
