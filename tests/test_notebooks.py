"""Every notebook runs top to bottom in fast mode (HETPROBIT_FAST=1) and writes its figures."""

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_writes_figures(path, tmp_path, monkeypatch):
    monkeypatch.setenv("HETPROBIT_FAST", "1")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    root = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    expected = re.findall(r'FIGURES / "([^"]+\.png)"', source)
    assert expected, "a notebook must save at least one figure"
    for name in expected:
        fig = tmp_path / "figures" / name
        assert fig.exists() and fig.stat().st_size > 5_000, name
