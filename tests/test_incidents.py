"""Incidents: the per-site confirmation counts and notify URLs, the incidents table kept as pings
are stored (against pandas ``outages`` and a brute force), flapping, and the CLI and API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import uptimelab as ul
from uptimelab.cli import main
from uptimelab.errors import SiteError
from uptimelab.storage.database import Database


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``uptimelab ARGS`` in this process: (exit code, stdout, stderr)."""
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


TOKEN = "s3cr3t-t0ken-value"


def test_down_after_up_after_and_notify_come_in_through_every_entry_point(
    db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = ul.add_site(
        "https://a.example/", down_after=3, up_after=2, notify=[f"json://h/{TOKEN}"], db=db
    )
    assert (site.down_after, site.up_after, site.notify) == (3, 2, [f"json://h/{TOKEN}"])
    assert TOKEN not in repr(site)
    default = ul.add_site("https://d.example/", db=db)
    assert (default.down_after, default.up_after, default.notify) == (2, 1, None)

    code, _, err = run_cli(
        capsys, "sites", "add", "https://b.example/", "--down-after", "4", "--up-after", "3",
        "--notify", f"tgram://{TOKEN}/1", "--notify", "ntfy://topic",
    )  # fmt: skip
    assert code == 0, err
    b = ul.get_site("https://b.example/", db=db)
    assert (b.down_after, b.up_after, b.notify) == (4, 3, [f"tgram://{TOKEN}/1", "ntfy://topic"])

    csv_file = tmp_path / "sites.csv"
    csv_file.write_text(
        f"url,down_after,up_after,notify\nhttps://c.example/,5,2,json://x/{TOKEN} mailto://m\n"
    )
    ul.import_sites(csv_file, db=db)
    c = ul.get_site("https://c.example/", db=db)
    assert (c.down_after, c.up_after, c.notify) == (5, 2, [f"json://x/{TOKEN}", "mailto://m"])

    for shown in (["sites", "list"], ["sites", "list", "--json"]):
        code, out, err = run_cli(capsys, *shown)
        assert code == 0, err
        assert TOKEN not in out
        assert "tgram://***" in out
    listed = json.loads(run_cli(capsys, "sites", "list", "--json")[1])
    assert {s["url"]: s["down_after"] for s in listed}["https://b.example/"] == 4


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("--down-after", "0", "down_after"),
        ("--up-after", "0", "up_after"),
        ("--down-after", "1001", "down_after"),
        ("--notify", "not a url", "notify"),
        ("--notify", "json://h/x y", "notify"),
    ],
)
def test_bad_confirmation_counts_or_notify_urls_are_refused_with_nothing_written(
    db: Database, capsys: pytest.CaptureFixture[str], option: str, value: str, named: str
) -> None:
    code, _, err = run_cli(capsys, "sites", "add", "https://e.example/", option, value)
    assert code == 2
    assert err.startswith("error: ")
    assert named in err
    assert err.count("\n") == 1
    with pytest.raises(SiteError):
        ul.get_site("https://e.example/", db=db)


def test_a_notify_cell_may_hold_a_json_list_and_an_empty_one_is_none(
    db: Database, tmp_path: Path
) -> None:
    csv_file = tmp_path / "sites.csv"
    csv_file.write_text(
        'url,notify\nhttps://f.example/,"[""json://a/1"", ""json://b/2""]"\nhttps://g.example/,\n'
    )
    ul.import_sites(csv_file, db=db)
    assert ul.get_site("https://f.example/", db=db).notify == ["json://a/1", "json://b/2"]
    assert ul.get_site("https://g.example/", db=db).notify is None
