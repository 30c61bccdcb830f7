"""``maintain``'s notifications task: old notification rows are deleted, never one still
pending nor one of an incident still open, and the count is in the report."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

import uptimelab as ul
from uptimelab.config import Settings
from uptimelab.errors import ConfigError
from uptimelab.ops.maintain import maintain
from uptimelab.storage.database import Database

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


def incident(db: Database, site: uuid.UUID, *, open_: bool) -> int:
    with db.connect() as conn:
        row = conn.execute(
            "INSERT INTO incidents (site_id, started_at, confirmed_at, resolved_at, category, "
            "down_pings) VALUES (%s, %s, %s, %s, 'timeout', 2) RETURNING id",
            (
                site,
                NOW - 200 * DAY,
                NOW - 200 * DAY + dt.timedelta(minutes=1),
                None if open_ else NOW - 199 * DAY,
            ),
        ).fetchone()
    assert row is not None
    return int(row["id"])


def notification(
    db: Database, site: uuid.UUID, name: str, status: str, age: dt.timedelta, incident: int | None
) -> None:
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO notifications (key, channel, site_id, incident_id, kind, transition_at, "
            "title, body, message_type, status, recorded_at) "
            "VALUES (%s, 'json://127.0.0.1/*** #abcd', %s, %s, 'down', %s, 't', 'b', 'failure', "
            "%s, %s)",
            (name, site, incident, NOW - age, status, NOW - age),
        )


def kept(db: Database) -> list[str]:
    with db.connect() as conn:
        return [r["key"] for r in conn.execute("SELECT key FROM notifications ORDER BY key")]


def fill(db: Database) -> dict[str, Any]:
    site = ul.add_site("https://shop.example/", name="shop", db=db).id
    closed = incident(db, site, open_=False)
    still_open = incident(db, site, open_=True)
    for status in ("sent", "failed", "expired", "suppressed", "collapsed", "pending"):
        notification(db, site, f"old-{status}", status, 100 * DAY, closed)
        notification(db, site, f"month-{status}", status, 30 * DAY, closed)
        notification(db, site, f"new-{status}", status, DAY, closed)
    notification(db, site, "old-open-incident", "sent", 100 * DAY, still_open)
    notification(db, site, "old-certificate", "sent", 100 * DAY, None)
    return {"site": site}


def test_maintain_deletes_old_notifications_but_pending_ones_and_those_of_open_incidents(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    monkeypatch.delenv("NOTIFICATIONS_RETENTION_DAYS", raising=False)
    fill(db)
    report = maintain(db=db, settings=Settings.load())
    assert report.notifications_pruned == 6  # 5 old and done, and the certificate's notice
    assert (
        "notifications: 6 row(s) older than 90 days deleted (pending ones and those of open "
        "incidents kept)"
    ) in report.lines
    left = kept(db)
    assert "old-pending" in left
    assert "old-open-incident" in left
    assert not [
        k for k in left if k.startswith("old-") and k not in ("old-pending", "old-open-incident")
    ]
    assert sum(k.startswith("month-") for k in left) == 6
    assert sum(k.startswith("new-") for k in left) == 6
    # Nothing more to do: the next run deletes nothing.
    assert maintain(db=db, settings=Settings.load()).notifications_pruned == 0


def test_notifications_follow_retention_days_when_it_is_set(db: Database) -> None:
    fill(db)
    # RETENTION_DAYS (no archive: the pings are left alone and it says so) wins over
    # NOTIFICATIONS_RETENTION_DAYS.
    settings = Settings.load(retention_days=20, notifications_retention_days=365)
    report = maintain(db=db, settings=settings)
    assert report.notifications_pruned == 11  # and now the month-old ones that are done
    assert any(
        line.startswith("notifications: 11 row(s) older than 20 days") for line in report.lines
    )
    assert sorted(k for k in kept(db) if not k.startswith("new-")) == [
        "month-pending",
        "old-open-incident",
        "old-pending",
    ]


def test_notifications_retention_days_is_read_and_bounded(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(db)
    monkeypatch.setenv("NOTIFICATIONS_RETENTION_DAYS", "20")
    assert maintain(db=db, settings=Settings.load()).notifications_pruned == 11
    monkeypatch.setenv("NOTIFICATIONS_RETENTION_DAYS", "7")
    with pytest.raises(ConfigError) as caught:
        Settings.load()
    assert str(caught.value).startswith("NOTIFICATIONS_RETENTION_DAYS=7: ")
    assert "\n" not in str(caught.value)
