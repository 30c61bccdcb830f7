"""The package as users get it: the public API, and a wheel that carries its SQL."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

import uptimelab as ul

REPO = Path(__file__).resolve().parent.parent


def test_the_public_api_is_pinned() -> None:
    assert ul.__all__ == [
        "BackgroundCollector",
        "Collector",
        "ConfigError",
        "CycleInProgressError",
        "CycleSummary",
        "Database",
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
        "get_site",
        "get_site_stats",
        "import_sites",
        "list_sites",
        "refresh_stats",
        "remove_site",
        "site_stats",
        "start_collector",
        "stats",
    ]
    assert ul.__all__ == sorted(ul.__all__)
    assert all(hasattr(ul, name) for name in ul.__all__)


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
