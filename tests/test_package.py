"""The package as users get it: the public API, and a wheel that carries its SQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

import uptimelab as ul
from uptimelab.cli import COMMANDS, load_command
from uptimelab.storage.database import Database

REPO = Path(__file__).resolve().parent.parent
# Libraries that no command needs merely to start: each costs tenths of a second to import.
HEAVY = ("matplotlib", "pyarrow", "starlette", "fastapi", "pandas", "sqlalchemy", "sqlmodel")
# Runs `code` in a fresh interpreter, then prints the top-level packages it has loaded.
LOADED = """
import sys
try:
{code}
except SystemExit:
    pass
print("LOADED", *sorted({{name.split(".")[0] for name in sys.modules}}))
"""


def loaded_after(code: str) -> set[str]:
    """The top-level packages a fresh interpreter has imported after running ``code``."""
    script = LOADED.format(code="\n".join("    " + line for line in code.splitlines()))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("LOADED ")]
    return set(line.split()[1:])


def test_the_public_api_is_pinned() -> None:
    assert ul.__all__ == [
        "BackgroundCollector",
        "Collector",
        "ConfigError",
        "CycleInProgressError",
        "CycleSummary",
        "Database",
        "ExportReport",
        "ImportReport",
        "InvalidSiteFileError",
        "InvalidURLError",
        "MigrationError",
        "MonitoringCycle",
        "Ping",
        "Prober",
        "Settings",
        "Site",
        "SiteError",
        "SiteRow",
        "SiteStats",
        "StoreError",
        "UnknownSiteError",
        "UptimelabError",
        "__version__",
        "add_site",
        "categorise",
        "collect_once",
        "connect",
        "disable_site",
        "enable_site",
        "export_sites",
        "get_site",
        "get_site_stats",
        "import_sites",
        "list_sites",
        "refresh_stats",
        "remove_site",
        "site_rows",
        "site_stats",
        "start_collector",
        "stats",
    ]
    assert ul.__all__ == sorted(ul.__all__)
    assert all(hasattr(ul, name) for name in ul.__all__)


def test_every_public_name_is_the_object_of_its_module() -> None:
    from uptimelab import collector, config, errors, probe, stats
    from uptimelab.storage import (
        database,
        models,
        site_export,
        site_import,
        site_stats,
        sites,
    )

    homes = [collector, config, errors, probe, database, models, site_export, site_import]
    homes += [site_stats, sites]
    for name in ul.__all__:
        if name == "__version__":
            continue
        found = [getattr(m, name) for m in homes if hasattr(m, name)]
        assert getattr(ul, name) in [*found, stats], name
    assert ul.stats is stats
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = ul.nothing  # type: ignore[attr-defined]  # the point: it is not there


def test_the_import_paths_of_the_readme_and_the_notebooks_resolve() -> None:
    from uptimelab import analysis, plots, stats

    assert ul.stats is stats
    used = {
        ul: ["connect", "add_site", "collect_once", "start_collector", "site_stats"],
        ul.stats: ["load_pings", "window_stats", "outages", "reliability", "uptime_series"],
        analysis: ["html_table", "site_names", "fleet_table", "sla_table", "load_cycles"],
        plots: ["worst_sites", "uptime_heatmap", "outage_timeline", "perf_results"],
    }
    for module, names in used.items():
        for name in names:
            assert callable(getattr(module, name)), f"{module.__name__}.{name}"
    # And every such name that README.md and the notebooks mention today.
    faces = {"ul": ul, "ul.stats": stats, "stats": stats, "analysis": analysis, "plots": plots}
    faces |= {"uptimelab.stats": stats, "uptimelab.analysis": analysis, "uptimelab.plots": plots}
    pattern = re.compile(
        r"\b(ul\.stats|uptimelab\.(?:stats|analysis|plots)|ul|stats|analysis|plots)\.(\w+)"
    )
    texts = [REPO / "README.md", *sorted((REPO / "notebooks").glob("*.ipynb"))]
    mentioned = {m.groups() for path in texts for m in pattern.finditer(path.read_text())}
    mentioned = {(face, name) for face, name in mentioned if name != "py"}  # file names
    assert len(mentioned) > 30
    missing = sorted(f"{face}.{name}" for face, name in mentioned if not hasattr(faces[face], name))
    assert missing == []


def test_importing_uptimelab_loads_no_heavy_library() -> None:
    assert loaded_after("import uptimelab") & set(HEAVY) == set()
    # Nor does asking it for the light names.
    assert loaded_after("import uptimelab as ul\nul.ConfigError, ul.Settings") & set(HEAVY) == set()


def test_the_cli_help_loads_no_heavy_library_and_no_command_module() -> None:
    loaded = loaded_after("from uptimelab.cli import main\nmain(['--help'])")
    assert loaded & {*HEAVY, "trio", "httpx", "psycopg"} == set()


@pytest.mark.parametrize(
    "argv", [["status"], ["sites", "list"], ["sites", "list", "--json"]], ids=" ".join
)
def test_status_and_the_site_list_load_neither_sqlalchemy_nor_pandas(
    db: Database, argv: list[str]
) -> None:
    ul.add_site("https://example.org/", db=db)  # a row to show
    loaded = loaded_after(f"from uptimelab.cli import main\nmain({argv!r})")
    assert "psycopg" in loaded  # it did reach the database
    assert loaded & set(HEAVY) == set()


def test_the_help_lists_each_command_by_the_first_paragraph_of_its_own_help() -> None:
    for name, (_, _, summary) in COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        first = (command.help or "").split("\n\n")[0]
        assert " ".join(first.split()) == " ".join(summary.split()), name  # rich reflows it


def test_the_root_help_lists_every_command_in_order() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "uptimelab", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    listed = re.findall(r"^│ (\w+) ", result.stdout.split("Commands")[1], flags=re.MULTILINE)
    assert listed == list(COMMANDS)


@pytest.mark.slow
def test_a_wheel_installed_outside_the_repo_runs_db_init(
    tmp_path: Path, create_database: Callable[[], str]
) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("uptimelab-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # Install the wheel itself (no network); its dependencies come from this environment, which
    # is added as a plain path so that the repo's editable install is not visible.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site_packages),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    (site_packages / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    url = create_database()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["UPTIMELAB_DATABASE_URL"] = url
    result = subprocess.run(
        [str(python), "-m", "uptimelab", "db", "init"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (REPO / "sql").glob("*.sql"))
    assert f"applied {', '.join(names)}" in result.stdout
    where = subprocess.run(
        [str(python), "-c", "import uptimelab.storage.database as d; print(d.sql_dir())"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(site_packages))
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
    assert row is not None
    assert row[0] == len(list((REPO / "sql").glob("*.sql")))
