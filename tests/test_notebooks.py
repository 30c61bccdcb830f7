"""The notebooks run top to bottom against a database seeded by ``demo --history``, in a kernel of
this interpreter, without an error or a warning; and they are committed without outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from uptimelab.domain.sites import SiteSpec
from uptimelab.storage.database import connect
from uptimelab.storage.site_import import upsert_sites
from uptimelab.storage.sites import list_sites
from uptimelab.testing.history import write_history

from .test_chart_labels import HOSTILE
from .test_report import PERF_SCENARIOS

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "uptimelab-tests"


@pytest.fixture(scope="module")
def seeded_url(create_database: Any) -> str:
    """A database of its own with a synthetic week of 12 sites (small: quick notebooks), every one
    named like a mathtext formula, which the plots must show as typed."""
    url: str = create_database("uptimelab_notebooks")
    db = connect(url)
    write_history(db, "7d", sites=12, seed=7)
    upsert_sites(
        [
            (SiteSpec(url=s.url, name=f"{HOSTILE} {s.name}"), frozenset({"url", "name"}))
            for s in list_sites(db=db)
        ],
        db=db,
    )
    db.close()
    return url


@pytest.fixture
def kernel(seeded_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel spec running this interpreter, its environment pointing at the seeded database and
    at a perf results file (in the shape ``uptimelab perf --json`` writes), so that the
    notebooks' optional section runs too."""
    perf = tmp_path / "perf.json"
    perf.write_text(json.dumps(PERF_SCENARIOS))
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "uptimelab tests",
                "language": "python",
                "env": {
                    "UPTIMELAB_DATABASE_URL": seeded_url,
                    "UPTIMELAB_DATA_DIR": str(tmp_path / "data"),
                    "UPTIMELAB_PERF_JSON": str(perf),
                },
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_runs_without_errors_or_warnings(path: Path, kernel: str) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=kernel,
        timeout=60,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    stderr = [o["text"] for o in outputs if o.get("name") == "stderr"]
    assert not stderr, f"{path.name} wrote to stderr (a warning?): {stderr}"
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} showed no plot"
    perf_section = "Performance results"
    if any(perf_section in c.source for c in notebook.cells):
        text = "".join(o.get("text", "") for o in outputs)
        assert "No performance results" not in text, "the perf section should have run"


def committed(path: Path) -> str:
    """The notebook as git would commit it: its staged version when git tracks it, else the file."""
    try:
        staged = subprocess.run(
            ["git", "-C", str(ROOT), "show", f":{path.relative_to(ROOT).as_posix()}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except FileNotFoundError:  # no git: a source tree
        return path.read_text(encoding="utf-8")
    return staged.stdout if staged.returncode == 0 else path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.reads(committed(path), as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{path.name}: a cell has outputs; run nbstripout --install"
        assert cell.execution_count is None, f"{path.name}: a cell has an execution count"
        assert not {"execution", "collapsed", "scrolled"} & set(cell.metadata)


def test_git_strips_notebooks_through_nbstripout() -> None:
    attributes = (ROOT / ".gitattributes").read_text(encoding="utf-8").splitlines()
    assert "*.ipynb filter=nbstripout" in attributes
    assert len(NOTEBOOKS) == 4
