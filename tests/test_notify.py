"""Notifications: apprise posting to a JSON web hook on a real loopback socket, the
notifications table as the outbox, and the redaction of the channels' tokens everywhere."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trio
from hypothesis import assume, given
from hypothesis import strategies as st

import uptimelab as ul
from uptimelab.collector.collector import Collector
from uptimelab.config import Settings
from uptimelab.domain.incidents import Transition
from uptimelab.errors import ConfigError, StoreError
from uptimelab.notify import notifier as notifier_module
from uptimelab.notify.channels import HOST_SCHEMES, Channel, redact_channel
from uptimelab.notify.notifier import QUEUE_TRANSITIONS, Notifier, transact_with
from uptimelab.ops.health import health, status
from uptimelab.storage.database import Database
from uptimelab.storage.maintenance_windows import add_maintenance
from uptimelab.testing.zoo import Zoo

from .test_package import loaded_after

WAIT_S = 30  # a guard against a hang, never a measure: conditions are waited on


class Receiver:
    """A JSON web hook on 127.0.0.1 that apprise's ``json://`` posts to; it answers each
    request with the next of ``statuses`` (then 200) and keeps the payloads it accepted."""

    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.requests = 0
        self.statuses: list[int] = []
        self.paths: list[str] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._changed:
                    receiver.requests += 1
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    if status == 200:
                        receiver.accepted.append(json.loads(body))
                        receiver.paths.append(self.path)
                    receiver._changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def url(self, path: str = "hook", userinfo: str = "") -> str:
        return f"json://{userinfo}127.0.0.1:{self.port}/{path}"

    def titles(self) -> list[str]:
        return [m["title"] for m in self.accepted]

    def wait_for(self, condition: Callable[[Receiver], bool]) -> None:
        """Block until ``condition(self)`` holds (fails the test after WAIT_S)."""
        with self._changed:
            assert self._changed.wait_for(lambda: condition(self), timeout=WAIT_S), (
                f"the receiver has {self.titles()} after {self.requests} requests"
            )

    async def until(self, condition: Callable[[Receiver], bool]) -> None:
        await trio.to_thread.run_sync(self.wait_for, condition)


@contextlib.contextmanager
def served() -> Iterator[Receiver]:
    """A receiver served from a thread until the block ends."""
    r = Receiver()
    # shutdown() returns when the serving loop next looks at its flag: at most poll_interval
    # (0.5 s by default, paid by every test's teardown).
    thread = threading.Thread(target=r.server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with served() as r:
        yield r


def dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(*urls: str, **more: Any) -> Settings:
    more.setdefault("notify_retry_delay_ms", 10)
    return Settings.load(notify_urls=" ".join(urls), **more)


@contextlib.asynccontextmanager
async def running(notifier: Notifier) -> AsyncIterator[Notifier]:
    async with trio.open_nursery() as nursery:
        await nursery.start(notifier.run)
        yield notifier
        nursery.cancel_scope.cancel()


def rows(db: Database) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return list(conn.execute("SELECT * FROM notifications ORDER BY id"))


async def until_rows(db: Database, condition: Callable[[list[dict[str, Any]]], bool]) -> None:
    """Wait until the notifications table satisfies ``condition`` (polled: the table is in
    another process's hands as far as this test knows)."""
    with trio.fail_after(WAIT_S):
        while not condition(await trio.to_thread.run_sync(rows, db)):  # noqa: ASYNC110
            await trio.sleep(0.02)


async def settled(db: Database) -> None:
    """Wait until no notification is pending (the last sent one is marked so)."""
    await until_rows(db, lambda t: all(r["status"] != "pending" for r in t))


async def rounds_of_reminders(notifier: Notifier, rounds: int) -> None:
    """Wait until the notifier has looked for reminders and certificates ``rounds`` times."""
    with trio.fail_after(WAIT_S):
        for _ in range(rounds):
            await notifier.reminded.wait()


def open_incident(db: Database, site_id: uuid.UUID, started: dt.datetime) -> int:
    with db.connect() as conn:
        row = conn.execute(
            "INSERT INTO incidents (site_id, started_at, confirmed_at, category, message, "
            "down_pings) VALUES (%s, %s, %s, 'timeout', 'timed out after 10 s', 2) RETURNING id",
            (site_id, started, started + dt.timedelta(seconds=30)),
        ).fetchone()
        assert row is not None
        return int(row["id"])


def age_notices(db: Database, seconds: int) -> None:
    """Make every notice recorded so far ``seconds`` older (a reminder falls due)."""
    with db.connect() as conn:
        conn.execute(
            "UPDATE notifications SET recorded_at = recorded_at - make_interval(secs => %s)",
            (seconds,),
        )


NOW = dt.datetime.now(dt.UTC)


def down(site: uuid.UUID, incident: int | None = 1, at: dt.datetime | None = None) -> Transition:
    at = at or dt.datetime.now(dt.UTC)
    return Transition(
        "down",
        site,
        None,
        at,
        incident_id=incident,
        started_at=at - dt.timedelta(minutes=1),
        category="timeout",
        message="timed out after 10 s",
    )


def recovered(site: uuid.UUID, incident: int | None = 1) -> Transition:
    at = dt.datetime.now(dt.UTC)
    return Transition(
        "recovered",
        site,
        None,
        at,
        incident_id=incident,
        started_at=at - dt.timedelta(minutes=5),
        resolved_at=at,
    )


# -- the messages, in order -------------------------------------------------------------------


async def test_down_a_reminder_and_recovery_reach_the_receiver_in_order(
    db: Database, receiver: Receiver
) -> None:
    site = ul.add_site("https://bob:hunter2@shop.example/?token=s3cret", name="shop", db=db)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)
    incident = open_incident(db, site.id, started)
    settings = settings_for(
        receiver.url(),
        notify_resend_ms=60_000,
        public_url="https://uptime.example.org/",
    )
    notifier = Notifier(transact_with(db), settings, periodic_s=0.05)
    async with running(notifier):
        notifier.offer([down(site.id, incident, at=started + dt.timedelta(seconds=30))])
        await receiver.until(lambda r: len(r.accepted) == 1)
        # Still down a resend interval later: one reminder, and no second one before the next.
        await trio.to_thread.run_sync(age_notices, db, 61)
        await receiver.until(lambda r: len(r.accepted) == 2)
        with db.connect() as conn:
            conn.execute("UPDATE incidents SET resolved_at = now() WHERE id = %s", (incident,))
        notifier.offer([recovered(site.id, incident)])
        await receiver.until(lambda r: len(r.accepted) == 3)
        await settled(db)
        # Resolved: however old its notices get, no more reminders.
        await trio.to_thread.run_sync(age_notices, db, 3600)
        await rounds_of_reminders(notifier, 3)
    assert receiver.titles() == ["DOWN: shop", "STILL DOWN: shop", "UP: shop"]
    first, reminder, up = receiver.accepted
    assert first["type"] == "failure"
    assert up["type"] == "success"
    assert "Category: timeout" in first["message"]
    assert "First error: timed out after 10 s" in first["message"]
    assert f"https://uptime.example.org/site-stats/{site.id}" in first["message"]
    assert "reminder 1" in reminder["message"]
    assert "after 5m" in up["message"]
    for payload in receiver.accepted:
        assert "hunter2" not in payload["message"]
        assert "s3cret" not in payload["message"]
        assert "https://***@shop.example/?token=***" in payload["message"]
    table = rows(db)
    assert [r["kind"] for r in table] == ["down", "resend", "recovered"]
    assert [r["sequence"] for r in table] == [0, 1, 0]
    assert all(r["status"] == "sent" and r["sent_at"] is not None for r in table)


@pytest.mark.parametrize(
    "failures",
    [[503], [503, 503, 503, 500], [500, 200, 502, 200, 429, 429], [404, 401, 200, 503]],
)
async def test_a_receiver_that_fails_then_recovers_gets_every_message_in_order(
    db: Database, receiver: Receiver, failures: list[int]
) -> None:
    site = ul.add_site("https://shop.example/", name="shop", db=db)
    receiver.statuses = list(failures)
    notifier = Notifier(transact_with(db), settings_for(receiver.url()), periodic_s=60)
    async with running(notifier):
        notifier.offer([down(site.id, 7), recovered(site.id, 7)])
        notifier.offer([down(site.id, 8), recovered(site.id, 8)])
        await receiver.until(lambda r: len(r.accepted) == 4)
        await settled(db)
    assert receiver.titles() == ["DOWN: shop", "UP: shop", "DOWN: shop", "UP: shop"]
    failed = sum(status != 200 for status in failures)
    assert receiver.requests == 4 + failed
    table = rows(db)
    assert [r["status"] for r in table] == ["sent"] * 4
    assert sum(r["attempts"] for r in table) == 4 + failed
    assert all(r["error"] is None for r in table)
    assert notifier.state.failed_attempts == failed


async def test_a_transition_reported_twice_is_told_once(db: Database, receiver: Receiver) -> None:
    site = ul.add_site("https://shop.example/", name="shop", db=db)
    notifier = Notifier(transact_with(db), settings_for(receiver.url()), periodic_s=60)
    transition = down(site.id, 3)
    async with running(notifier):
        notifier.offer([transition])
        await receiver.until(lambda r: len(r.accepted) == 1)
        notifier.offer([transition, recovered(site.id, 3)])  # a replayed spool, say
        await receiver.until(lambda r: len(r.accepted) == 2)
    assert receiver.titles() == ["DOWN: shop", "UP: shop"]
    assert len(rows(db)) == 2


async def test_what_was_recorded_and_not_sent_is_sent_by_the_next_run(
    db: Database, receiver: Receiver
) -> None:
    site = ul.add_site("https://shop.example/", name="shop", db=db)
    url = receiver.url()
    receiver.statuses = [503] * 1000  # down for the whole first run
    first = Notifier(transact_with(db), settings_for(url, notify_retry_delay_ms=60_000))
    async with running(first):
        first.offer([down(site.id, 4)])
        await receiver.until(lambda r: r.requests >= 1)
    assert rows(db)[0]["status"] == "pending"
    receiver.statuses = []
    with db.connect() as conn:  # the retry (and a lease) falls due now
        conn.execute("UPDATE notifications SET next_attempt_at = now()")
    second = Notifier(transact_with(db), settings_for(url), periodic_s=60)
    async with running(second):
        await receiver.until(lambda r: len(r.accepted) == 1)
    assert receiver.titles() == ["DOWN: shop"]


async def test_each_channel_gets_the_messages_the_site_and_the_settings_name(
    db: Database, receiver: Receiver
) -> None:
    own = ul.add_site("https://own.example/", name="own", notify=[receiver.url("site-hook")], db=db)
    other = ul.add_site("https://other.example/", name="other", db=db)
    notifier = Notifier(transact_with(db), settings_for(receiver.url("global-hook")), periodic_s=60)
    async with running(notifier):
        notifier.offer([down(own.id, 1)])
        await receiver.until(lambda r: len(r.accepted) == 2)
        notifier.offer([down(other.id, 2)])
        await receiver.until(lambda r: len(r.accepted) == 3)
    by_path = sorted(zip(receiver.paths, receiver.titles(), strict=True))
    assert by_path == [
        ("/global-hook", "DOWN: other"),
        ("/global-hook", "DOWN: own"),
        ("/site-hook", "DOWN: own"),
    ]


# -- what is recorded and not sent ------------------------------------------------------------


async def test_a_transition_older_than_the_max_age_is_recorded_not_sent(
    db: Database, receiver: Receiver
) -> None:
    site = ul.add_site("https://shop.example/", name="shop", db=db)
    settings = settings_for(receiver.url(), notify_max_age_ms=3_600_000)
    notifier = Notifier(transact_with(db), settings, periodic_s=60)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1, seconds=1)
    async with running(notifier):
        notifier.offer([down(site.id, 5, at=old), recovered(site.id, 6)])
        await receiver.until(lambda r: len(r.accepted) == 1)
    assert receiver.titles() == ["UP: shop"]
    stale = rows(db)[0]
    assert (stale["kind"], stale["status"], stale["attempts"]) == ("down", "expired", 0)
    assert "NOTIFY_MAX_AGE_MS=3600000" in stale["error"]


async def test_a_pending_message_that_grows_too_old_while_failing_is_expired(
    db: Database, receiver: Receiver
) -> None:
    site = ul.add_site("https://shop.example/", name="shop", db=db)
    receiver.statuses = [503] * 1000
    settings = settings_for(receiver.url(), notify_max_age_ms=1000)
    notifier = Notifier(transact_with(db), settings, periodic_s=60, poll_s=0.05)
    async with running(notifier):
        notifier.offer([down(site.id, 9)])
        await until_rows(db, lambda t: bool(t) and t[0]["status"] == "expired")
    (row,) = rows(db)
    assert row["attempts"] >= 1
    assert "NOTIFY_MAX_AGE_MS=1000" in row["error"]


async def test_flapping_collapses_the_notices_into_one_until_stable(
    db: Database, receiver: Receiver
) -> None:
    site = ul.add_site("https://shop.example/", name="shop", db=db)
    now = dt.datetime.now(dt.UTC)
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO incident_flapping (site_id, started_at) VALUES (%s, %s)",
            (site.id, now - dt.timedelta(minutes=10)),
        )
    notifier = Notifier(transact_with(db), settings_for(receiver.url()), periodic_s=60)
    flap = Transition("flapping", site.id, None, now - dt.timedelta(minutes=10))
    async with running(notifier):
        changes = [t for i in range(10, 16) for t in (down(site.id, i), recovered(site.id, i))]
        notifier.offer([flap, *changes])
        await until_rows(db, lambda t: len(t) == 13)
        with db.connect() as conn:
            conn.execute(
                "UPDATE incident_flapping SET ended_at = now() WHERE site_id = %s", (site.id,)
            )
        notifier.offer([Transition("stable", site.id, None, dt.datetime.now(dt.UTC))])
        await receiver.until(lambda r: len(r.accepted) == 2)
        notifier.offer([down(site.id, 20)])
        await receiver.until(lambda r: len(r.accepted) == 3)
        await settled(db)
    assert receiver.titles() == ["FLAPPING: shop", "STABLE: shop", "DOWN: shop"]
    statuses = [r["status"] for r in rows(db)]
    assert statuses == ["sent", *["collapsed"] * 12, "sent", "sent"]


async def test_a_certificate_expiring_soon_is_told_once_per_certificate(
    db: Database, receiver: Receiver
) -> None:
    site = ul.add_site("https://shop.example/", name="shop", db=db)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO site_stats (site_id, cert_expires_at, last_checked) "
            "VALUES (%s, %s, now())",
            (site.id, expires),
        )
    notifier = Notifier(transact_with(db), settings_for(receiver.url()), periodic_s=0.02)
    async with running(notifier):
        await receiver.until(lambda r: len(r.accepted) == 1)
        await rounds_of_reminders(notifier, 3)
        with db.connect() as conn:  # renewed, and expiring again (a short-lived certificate)
            conn.execute(
                "UPDATE site_stats SET cert_expires_at = cert_expires_at + interval '1 day'"
            )
        await receiver.until(lambda r: len(r.accepted) == 2)
    assert receiver.titles() == ["CERTIFICATE EXPIRING: shop"] * 2
    assert "(in 3 days)" in receiver.accepted[0]["message"]
    assert len(rows(db)) == 2


# -- never in the way -------------------------------------------------------------------------


async def test_offering_never_waits_and_a_full_queue_loses_nothing(
    db: Database, receiver: Receiver
) -> None:
    site = ul.add_site("https://shop.example/", name="shop", db=db)
    gate = trio.Event()
    real = transact_with(db)

    async def held(fn: Any) -> Any:  # the database is slow: nothing is recorded for a while
        await gate.wait()
        return await real(fn)

    notifier = Notifier(held, settings_for(receiver.url()), periodic_s=60)
    many = [down(site.id, i) for i in range(3 * QUEUE_TRANSITIONS)]
    async with running(notifier):
        notifier.offer(many)  # synchronous: it cannot wait
        gate.set()
        await until_rows(db, lambda t: len(t) == len(many))
    assert notifier.state.lost == 0
    assert [r["incident_id"] for r in rows(db)] == list(range(len(many)))


async def test_transitions_lost_past_a_full_queue_are_in_the_database_and_degrade_health(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    site = ul.add_site("https://shop.example/", name="shop", db=db)
    assert {c.name: c for c in health(db=db).checks}["notifications"].status == "healthy"
    # A queue of 2 and an overflow of 3: of 10 transitions offered at once, 5 are lost.
    notifier = Notifier(transact_with(db), settings_for(), periodic_s=60, queue=2, overflow=3)
    with caplog.at_level(logging.ERROR):
        notifier.offer([down(site.id, i) for i in range(10)])
    assert notifier.state.lost == 5
    assert caplog.text.count("notification queue full") == 5
    await notifier.flush()  # records what it kept, and the count of what it lost
    with db.connect() as conn:
        (loss,) = conn.execute("SELECT * FROM notification_losses").fetchall()
    assert loss["notifier_id"] == notifier.id
    assert loss["lost"] == 5
    assert loss["pid"] == os.getpid()
    assert loss["last_key"] == down(site.id, 9).key
    check = {c.name: c for c in health(db=db).checks}["notifications"]
    assert check.status == "degraded"
    assert check.detail.startswith("5 transition(s) of the last day lost, never recorded nor told")
    assert f"pid {os.getpid()}" in check.detail
    assert "\n" not in check.detail
    # Later losses of the same notifier add up in its one row.
    notifier.offer([down(site.id, i) for i in range(10, 20)])
    await notifier.flush()
    with db.connect() as conn:
        assert conn.execute("SELECT lost FROM notification_losses").fetchall() == [{"lost": 10}]
        # A day later, it is history: health is healthy again.
        conn.execute("UPDATE notification_losses SET last_lost_at = now() - interval '25 hours'")
    assert {c.name: c for c in health(db=db).checks}["notifications"].status == "healthy"


# -- redaction --------------------------------------------------------------------------------

SECRET_FORMS = [
    (
        "json://user:PASSWORD1@hooks.example.org:8080/hook/TOKEN1?x=1",
        "json://***@hooks.example.org:8080/***",
    ),
    ("jsons://hooks.example.org/TOKEN1", "jsons://hooks.example.org/***"),
    ("form://127.0.0.1:5000/TOKEN1", "form://127.0.0.1:5000/***"),
    ("tgram://123456:TOKEN1/CHAT1", "tgram://***"),
    ("slack://TOKENA/TOKENB/TOKENC", "slack://***"),
    ("discord://WEBHOOKID/TOKEN1", "discord://***"),
    ("mailto://user:PASSWORD1@gmail.com", "mailto://***@gmail.com"),
    ("mailto://user:PASS/WORD@1@gmail.com", "mailto://***@gmail.com/***"),
    ("ntfy://SECRETTOPIC", "ntfy://***"),
    ("msteams://TOKEN1/TOKEN2/TOKEN3", "msteams://***"),
    ("json://[::1]:8080/TOKEN1", "json://[::1]:8080/***"),
]


@pytest.mark.parametrize(("url", "shown"), SECRET_FORMS)
def test_a_channel_is_shown_without_its_secrets(url: str, shown: str) -> None:
    assert redact_channel(url) == shown
    channel = Channel(url)
    assert channel.shown.startswith(shown + " #")
    for text in (channel.shown, repr(channel), str(channel)):
        for secret in ("PASSWORD1", "TOKEN", "CHAT1", "SECRETTOPIC", "WEBHOOKID", "WORD"):
            assert secret not in text


@given(
    scheme=st.sampled_from(["json", "jsons", "form", "xml", "mailto", "tgram", "slack", "ntfy"]),
    secret=st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=8, max_size=30),
    shape=st.sampled_from(
        [
            "{s}://{x}@host.example/",
            "{s}://user:{x}@host.example/",
            "{s}://host.example/{x}",
            "{s}://host.example:81/a/{x}",
            "{s}://host.example/?token={x}",
            "{s}://{x}/",
            "{s}://{x}",
            "{s}://user:a/{x}@host.example/",
            "{s}://{x}:{x}/chat",
        ]
    ),
)
def test_no_form_of_url_shows_its_secret(scheme: str, secret: str, shape: str) -> None:
    # Where the scheme's authority is a host (a web hook, a mail server), the host is shown.
    assume(scheme not in HOST_SCHEMES or not shape.startswith("{s}://{x}"))
    url = shape.format(s=scheme, x=secret)
    assert secret not in Channel(url).shown
    assert Channel(url).shown.startswith(f"{scheme}://")


def test_two_channels_that_read_alike_are_told_apart() -> None:
    a, b = Channel("tgram://bot:tok/1"), Channel("tgram://bot:tok/2")
    assert redact_channel(a.url) == redact_channel(b.url)
    assert a.shown != b.shown


def test_notify_urls_come_from_the_environment_and_are_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFY_URLS", " json://u:PW1@h/x  tgram://TOK/CHAT json://u:PW1@h/x ")
    settings = Settings.load()
    assert [u.get_secret_value() for u in settings.notify_urls] == [
        "json://u:PW1@h/x",
        "tgram://TOK/CHAT",
    ]
    shown = repr(settings) + str(settings.model_dump(mode="json"))
    assert "PW1" not in shown
    assert "TOK" not in shown
    monkeypatch.setenv("NOTIFY_URLS", '["json://h/x"]')
    assert len(Settings.load().notify_urls) == 1


@pytest.mark.parametrize("value", ["not-a-url", "json://ok/x nonsense", "[broken"])
def test_a_notify_url_that_is_no_url_is_refused_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("NOTIFY_URLS", value)
    with pytest.raises(ConfigError) as caught:
        Settings.load()
    assert str(caught.value).startswith("NOTIFY_URLS='**********': ")
    assert "nonsense" not in str(caught.value)
    assert "broken" not in str(caught.value)


async def test_tokens_stay_out_of_the_table_the_logs_and_health(
    db: Database, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    site = ul.add_site("https://shop.example/", name="shop", db=db)
    dead = f"json://user:PASSWORD1@127.0.0.1:{dead_port()}/hook/TOKEN1"
    good = receiver.url("hook/TOKEN2", userinfo="user:PASSWORD2@")
    notifier = Notifier(transact_with(db), settings_for(dead, good), periodic_s=60)
    with caplog.at_level(logging.INFO):
        async with running(notifier):
            notifier.offer([down(site.id, 1)])
            await receiver.until(lambda r: len(r.accepted) == 1)
            await until_rows(db, lambda t: any(r["error"] for r in t))
    checks = {c.name: c for c in health(db=db).checks}
    check = checks["notifications"]
    assert check.status == "degraded"
    assert "json://***@127.0.0.1" in check.detail
    assert "\n" not in check.detail
    table = json.dumps(rows(db), default=str)
    logs = caplog.text
    for text in (table, logs, check.detail):
        for secret in ("PASSWORD1", "PASSWORD2", "TOKEN1", "TOKEN2"):
            assert secret not in text
    assert "json://***@127.0.0.1" in logs


# -- the command and the import cost ----------------------------------------------------------


def uptimelab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "uptimelab", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_notify_test_reaches_the_receiver(receiver: Receiver) -> None:
    url = receiver.url("hook/TOKEN1", userinfo="user:PASSWORD1@")
    done = uptimelab("notify", "test", url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"sent: json://***@127.0.0.1:{receiver.port}/*** #")
    assert "PASSWORD1" not in done.stdout + done.stderr
    assert "TOKEN1" not in done.stdout
    assert receiver.titles() == ["uptimelab: test notification"]
    assert receiver.paths == ["/hook/TOKEN1"]
    # And to every URL of NOTIFY_URLS when none is given.
    both = f"{receiver.url('a')} {receiver.url('b')}"
    done = uptimelab("notify", "test", env={"NOTIFY_URLS": both})
    assert done.returncode == 0, done.stderr
    assert receiver.paths[1:] == ["/a", "/b"]


@pytest.mark.parametrize(
    "url",
    [
        "json://user:PASSWORD1@127.0.0.1:{port}/hook/TOKEN1",
        "form://127.0.0.1:{port}/TOKEN1",
    ],
)
def test_notify_test_fails_loudly_on_one_line_on_a_dead_receiver(url: str) -> None:
    done = uptimelab("notify", "test", url.format(port=dead_port()))
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ")
    assert "PASSWORD1" not in line
    assert "TOKEN1" not in line


def test_notify_test_without_any_url_says_so() -> None:
    done = uptimelab("notify", "test", env={"NOTIFY_URLS": ""})
    assert done.returncode == 2
    assert done.stderr.strip() == "error: no URL given and NOTIFY_URLS is empty: nothing to test"


@pytest.mark.parametrize(
    "code",
    [
        "import uptimelab",
        "import uptimelab.notify, uptimelab.notify.notifier",
        "from uptimelab.cli import main\nmain(['--help'])",
        "from uptimelab.cli import main\nmain(['notify', '--help'])",
    ],
)
def test_apprise_is_imported_only_where_a_message_is_sent(code: str) -> None:
    assert "apprise" not in loaded_after(code)
    assert "apprise" in loaded_after("import uptimelab.notify.sender")


# -- end to end: a collector, a zoo target that goes down and recovers --------------------------


async def test_a_collector_tells_of_a_zoo_site_that_goes_down_and_recovers(
    db: Database, receiver: Receiver, zoo: Zoo
) -> None:
    site = ul.add_site(zoo.url("status"), name="flaky", db=db)  # answers 500: down
    settings = settings_for(receiver.url(), database_url=db.url)
    collector = Collector(db, settings)
    async with collector.session():
        await collector.cycle()
        assert receiver.titles() == []  # one down ping is not an incident (down_after 2)
        await collector.cycle()
        with db.connect() as conn:  # the site's server is back
            conn.execute("UPDATE sites SET url = %s WHERE id = %s", (zoo.url("ok"), site.id))
        await collector.cycle()
    # The session's end records and sends what the cycles' transitions left.
    await receiver.until(lambda r: len(r.accepted) == 2)
    assert receiver.titles() == ["DOWN: flaky", "UP: flaky"]
    assert "Category: http_status" in receiver.accepted[0]["message"]
    assert "Location: Unknown" in receiver.accepted[0]["message"]  # MONITORING_LOCATION
    assert [(r["kind"], r["status"]) for r in rows(db)] == [("down", "sent"), ("recovered", "sent")]


async def test_a_running_collector_tells_as_it_goes(
    db: Database, receiver: Receiver, zoo: Zoo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIN_SITE_INTERVAL_MS", "1000")
    monkeypatch.setenv("PING_TIMEOUT_MS", "500")
    site = ul.add_site(
        zoo.url("status"), name="flaky", interval_ms=2000, retry_interval_ms=1000, db=db
    )
    # A short lease: the collector beats every 0.5 s and sees the new URL at its next beat.
    settings = settings_for(
        receiver.url(), database_url=db.url, monitoring_interval_ms=60_000, collector_lease_ms=1500
    )
    collector = Collector(db, settings)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collector.run)
        await receiver.until(lambda r: len(r.accepted) == 1)
        with db.connect() as conn:
            conn.execute("UPDATE sites SET url = %s WHERE id = %s", (zoo.url("ok"), site.id))
        await receiver.until(lambda r: len(r.accepted) == 2)
        collector.stop()
    assert receiver.titles() == ["DOWN: flaky", "UP: flaky"]


# -- maintenance ------------------------------------------------------------------------------

HOUR = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)


@pytest.mark.parametrize(
    ("window", "inside", "outside"),
    [
        (  # a one-off window of the site
            {
                "starts_at": HOUR - dt.timedelta(minutes=30),
                "ends_at": HOUR + dt.timedelta(minutes=10),
            },
            HOUR + dt.timedelta(minutes=9, seconds=59),
            HOUR + dt.timedelta(minutes=10),  # its end is not in it
        ),
        (  # a one-off window of every site
            {
                "every_site": True,
                "starts_at": HOUR - dt.timedelta(minutes=30),
                "ends_at": HOUR + dt.timedelta(minutes=10),
            },
            HOUR - dt.timedelta(minutes=30),  # its start is
            HOUR - dt.timedelta(minutes=31),
        ),
        (  # a recurring window: every hour at :00 for 20 minutes, since yesterday
            {
                "starts_at": HOUR - dt.timedelta(days=1),
                "cron": "0 * * * *",
                "duration_ms": 20 * 60_000,
            },
            HOUR + dt.timedelta(minutes=5),
            HOUR - dt.timedelta(minutes=30),
        ),
    ],
)
async def test_a_maintenance_window_suppresses_the_notices_of_its_time(
    db: Database,
    receiver: Receiver,
    window: dict[str, Any],
    inside: dt.datetime,
    outside: dt.datetime,
) -> None:
    site = ul.add_site("https://shop.example/", name="shop", db=db)
    every_site = window.pop("every_site", False)
    add_maintenance(site=None if every_site else site.id, reason="planned", db=db, **window)
    settings = settings_for(receiver.url(), notify_max_age_ms=4 * 3_600_000)
    notifier = Notifier(transact_with(db), settings, periodic_s=60)
    async with running(notifier):
        notifier.offer([down(site.id, 1, at=inside), down(site.id, 2, at=outside)])
        await receiver.until(lambda r: len(r.accepted) == 1)
        await settled(db)
    assert [(r["incident_id"], r["status"]) for r in rows(db)] == [(1, "suppressed"), (2, "sent")]
    assert "maintenance" in rows(db)[0]["error"]


def test_status_shows_the_notify_urls_redacted(db: Database) -> None:
    settings = Settings.load(
        database_url=db.url,
        notify_urls="json://u:PASSWORD1@hooks.example.org/TOKEN1 tgram://TOKEN2/1",
    )
    shown = status(settings, db=db).config["notify_urls"]
    assert [s.split(" #")[0] for s in shown] == ["json://***@hooks.example.org/***", "tgram://***"]
    assert "TOKEN" not in str(shown)
    assert "PASSWORD1" not in str(shown)


async def test_a_crash_between_sending_and_marking_sent_repeats_that_message_only(
    db: Database, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notifier_module, "LEASE_S", 0.5)  # a claimed row is free again soon
    monkeypatch.setattr(notifier_module, "FAULT_PAUSE_S", 0.05)
    settle = Notifier._settle
    crashes = [StoreError("the database went away after the send")]

    def crash_once(self: Notifier, conn: Any, outcomes: Any) -> None:
        if crashes:
            raise crashes.pop()
        settle(self, conn, outcomes)

    monkeypatch.setattr(Notifier, "_settle", crash_once)
    site = ul.add_site("https://shop.example/", name="shop", db=db)
    notifier = Notifier(transact_with(db), settings_for(receiver.url()), periodic_s=60)
    async with running(notifier):
        notifier.offer([down(site.id, 1), recovered(site.id, 1)])
        await receiver.until(lambda r: len(r.accepted) == 3)
        await settled(db)
    assert receiver.titles() == ["DOWN: shop", "DOWN: shop", "UP: shop"]
    assert [r["status"] for r in rows(db)] == ["sent", "sent"]


async def test_a_collector_collapses_a_flapping_zoo_site_into_one_notice(
    db: Database, receiver: Receiver, zoo: Zoo
) -> None:
    site = ul.add_site(zoo.url("status"), name="flaky", down_after=1, db=db)
    settings = settings_for(
        receiver.url(), database_url=db.url, flap_changes=2, flap_window_ms=3_600_000
    )
    collector = Collector(db, settings)
    async with collector.session():
        for target in ("status", "ok", "status", "ok", "status"):  # five changes of state
            with db.connect() as conn:
                conn.execute("UPDATE sites SET url = %s WHERE id = %s", (zoo.url(target), site.id))
            await collector.cycle()
    await receiver.until(lambda r: len(r.accepted) == 3)
    await settled(db)
    # Told of the first two changes; the third started the flapping, told once for it and the
    # two after it.
    assert receiver.titles() == ["DOWN: flaky", "UP: flaky", "FLAPPING: flaky"]
    assert "more than 2 changes of state" in receiver.accepted[2]["message"]
    table = rows(db)
    assert [(r["kind"], r["status"]) for r in table] == [
        ("down", "sent"),
        ("recovered", "sent"),
        ("down", "collapsed"),
        ("flapping", "sent"),
        ("recovered", "collapsed"),
        ("down", "collapsed"),
    ]
