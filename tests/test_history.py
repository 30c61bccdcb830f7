"""The synthetic history behind ``uptimelab demo --history``: deterministic, and holding what the
notebooks look for (outages, a regression, flapping, the collector's gaps and overruns)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import uptimelab as ul
from uptimelab import stats
from uptimelab.errors import ConfigError
from uptimelab.storage.database import Database
from uptimelab.testing.history import (
    HISTORY_DOMAIN,
    REGRESSION_FACTOR,
    History,
    synthetic_history,
    write_history,
)

from .test_cli import rows, run

END = pd.Timestamp("2026-03-10 14:37:12", tz="UTC")
WEEK = dt.timedelta(days=7)
FIVE_MIN = pd.Timedelta(minutes=5)


@pytest.fixture(scope="module")
def week() -> History:
    return synthetic_history(12, span=WEEK, seed=7, end=END)


def pings_of(history: History, site: str) -> pd.DataFrame:
    return history.pings.loc[history.pings["site"] == site].sort_values("checked_at")


def test_the_same_seed_gives_the_same_history(week: History) -> None:
    again = synthetic_history(12, span=WEEK, seed=7, end=END)
    pd.testing.assert_frame_equal(again.pings, week.pings)
    pd.testing.assert_frame_equal(again.cycles, week.cycles)
    assert again.incidents == week.incidents
    other = synthetic_history(12, span=WEEK, seed=8, end=END)
    assert not other.pings["response_time_ms"].equals(week.pings["response_time_ms"])


def test_the_history_ends_at_the_interval_before_end_and_spans_the_week(week: History) -> None:
    assert week.end == END.floor(FIVE_MIN)
    assert week.end - week.start == WEEK - FIVE_MIN
    assert week.pings["checked_at"].min() >= week.start
    assert week.pings["checked_at"].max() < week.end + FIVE_MIN
    assert len(week.sites) == 12
    assert all(s.url == f"https://{s.name}.{HISTORY_DOMAIN}/" for s in week.sites)
    # one ping per site per stored cycle, and the rows obey the pings table's rules
    assert len(week.pings) == week.cycles["sites_checked"].sum()
    assert not week.pings.duplicated(["site", "checked_at"]).any()
    up = week.pings["status"] == "up"
    assert (up == week.pings["error_category"].isna()).all()
    assert (week.pings.loc[up, "status_code"] == 200).all()
    http = week.pings["error_category"] == "http_status"
    assert week.pings.loc[http, "status_code"].isin([502, 503]).all()
    assert week.pings["error_message"].isna().equals(up)
    assert (week.pings["response_time_ms"] >= 1).all()


def test_every_planted_outage_is_down_for_its_whole_span(week: History) -> None:
    outages = [i for i in week.incidents if i.kind == "outage"]
    assert sorted(i.category or "" for i in outages) == sorted(
        ["refused", "dns", "tls", "http_status", "timeout", "network"]
    )
    assert len({i.site for i in outages}) == 6
    for incident in outages:
        mine = pings_of(week, str(incident.site))
        ends = incident.ended_at if incident.ended_at is not None else week.end + FIVE_MIN
        inside = mine.loc[mine["checked_at"].between(incident.started_at, ends, inclusive="left")]
        assert len(inside) >= 2, incident
        assert (inside["error_category"] == incident.category).all(), incident
        if incident.ended_at is None:  # the ongoing one: the site is down at the end
            assert mine["status"].iloc[-1] == "down"
    found = stats.outages(week.pings.rename(columns={"site": "site_id"}))
    durations = found.groupby("site_id", observed=True)["duration"].max()
    tls = next(i for i in outages if i.category == "tls")
    restart = next(i for i in outages if i.category == "refused")
    assert durations[tls.site] > pd.Timedelta(hours=5) > durations[restart.site]


def test_one_site_regresses_and_one_flaps(week: History) -> None:
    regression = next(i for i in week.incidents if i.kind == "regression")
    mine = pings_of(week, str(regression.site))
    mine = mine.loc[mine["status"] == "up"]
    day = pd.Timedelta(days=1)
    before = mine.loc[mine["checked_at"].between(regression.started_at - day, regression.started_at,
                                                 inclusive="left"), "response_time_ms"]  # fmt: skip
    after = mine.loc[mine["checked_at"].between(regression.started_at, regression.started_at + day,
                                                inclusive="left"), "response_time_ms"]  # fmt: skip
    assert after.median() / before.median() == pytest.approx(REGRESSION_FACTOR, rel=0.2)

    flapping = next(i for i in week.incidents if i.kind == "flapping")
    assert flapping.ended_at is not None
    found = stats.outages(pings_of(week, str(flapping.site)).rename(columns={"site": "site_id"}))
    during = found["started_at"].between(flapping.started_at, flapping.ended_at)
    assert during.sum() >= 20
    assert (~during).sum() <= 3  # outside its spell it is a healthy site


def test_the_collector_has_gaps_overruns_and_an_interrupted_cycle(week: History) -> None:
    cycles = week.cycles
    gaps = [i for i in week.incidents if i.kind == "collector_gap"]
    assert len(gaps) == 2
    for gap in gaps:
        assert gap.ended_at is not None
        assert not cycles["started_at"].between(gap.started_at, gap.ended_at, "left").any()
        assert not week.pings["checked_at"].between(gap.started_at, gap.ended_at, "left").any()
    overran = cycles["duration_ms"] > FIVE_MIN / pd.Timedelta(milliseconds=1)
    assert overran.sum() == 3
    next_start = cycles["started_at"].shift(-1) - cycles["started_at"]
    assert (next_start[overran] > FIVE_MIN).all()  # the overrun start was skipped
    assert (cycles["finished_at"] - cycles["started_at"] == pd.to_timedelta(
        cycles["duration_ms"], unit="ms")).all()  # fmt: skip
    cut = cycles.loc[cycles["error"].notna()]
    assert len(cut) == 1
    assert cut["error"].iloc[0] == f"interrupted after {cut['sites_checked'].iloc[0]} of 12 sites"
    assert 0 < cut["sites_checked"].iloc[0] < 12
    # each cycle's counts are its pings'
    at = pd.merge_asof(
        week.pings.sort_values("checked_at"),
        cycles[["started_at", "id"]],
        left_on="checked_at",
        right_on="started_at",
    )
    counts = at.groupby("id")["status"].agg(pings_up=lambda s: (s == "up").sum(), pings="size")
    joined = cycles.set_index("id").join(counts)
    np.testing.assert_array_equal(joined["pings"], joined["sites_checked"])
    np.testing.assert_array_equal(joined["pings_up"], joined["up"])
    np.testing.assert_array_equal(joined["up"] + joined["down"], joined["sites_checked"])


@pytest.mark.parametrize(
    ("span", "every"),
    [(dt.timedelta(days=1), dt.timedelta(hours=1)), (dt.timedelta(days=1), dt.timedelta(minutes=1)),
     (dt.timedelta(days=90), dt.timedelta(hours=1))],
)  # fmt: skip
def test_any_span_and_interval_in_range_plants_everything(
    span: dt.timedelta, every: dt.timedelta
) -> None:
    history = synthetic_history(8, span=span, every=every, end=END)
    kinds = [i.kind for i in history.incidents]
    assert kinds.count("outage") == 6
    assert kinds.count("collector_gap") == 2
    assert len(history.pings) == history.cycles["sites_checked"].sum()
    assert history.end - history.start == span - every


@pytest.mark.parametrize(
    ("sites", "span", "every", "message"),
    [
        (
            7,
            WEEK,
            dt.timedelta(minutes=5),
            "^sites 7 is not within 8 to 2000: ",
        ),
        (
            12,
            dt.timedelta(hours=5),
            dt.timedelta(minutes=5),
            "^history 5h is not a span within 1d ",
        ),
        (12, WEEK, dt.timedelta(seconds=10), "^every 10s is not an interval within 1m to 1h$"),
        (
            2000,
            dt.timedelta(days=90),
            dt.timedelta(minutes=1),
            "a history holds at most 5,000,000",
        ),
    ],
)
def test_sizes_out_of_range_are_config_errors(
    sites: int, span: dt.timedelta, every: dt.timedelta, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        synthetic_history(sites, span=span, every=every, end=END)


def test_write_history_stores_it_and_refreshes_stats(db: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    summary = write_history(db, "2d", sites=9, seed=3, now=now)
    assert rows(db, "SELECT count(*) FROM pings") == summary.pings > 9 * 500
    assert rows(db, "SELECT count(*) FROM monitoring_cycles") == summary.cycles
    sites = ul.list_sites(db=db)
    assert len(sites) == 9
    assert not any(s.is_active for s in sites)  # nobody pings the .example URLs
    # site_stats was refreshed at `now`: it agrees with the pings it was computed from
    expected = stats.window_stats(stats.load_pings(db), now=now).set_index("site_id")
    for row in ul.site_stats(db=db):
        assert row.pings_24h == expected.at[str(row.site_id), "pings_24h"]
        assert row.current_status == expected.at[str(row.site_id), "current_status"]

    # Again with fewer sites: the history is replaced, not added to, and the extra site goes.
    again = write_history(db, "2d", sites=8, seed=3, now=now)
    assert rows(db, "SELECT count(*) FROM pings") == again.pings
    assert rows(db, "SELECT count(*) FROM monitoring_cycles") == again.cycles
    assert len(ul.list_sites(db=db)) == 8


def test_demo_history_command(db: Database) -> None:
    result = run("demo", "--history", "1d", "--sites", "8", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert "wrote a synthetic history" in result.stdout
    assert "certificate expired" in result.stdout
    assert rows(db, "SELECT count(*) FROM site_stats") == 8
    bad = run("demo", "--history", "1d", "--sites", "3")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --sites: sites 3 is not within 8 to 2000: a history needs one site per planned "
        "outage, one regressing and one flapping"
    ]
