"""The seed's configuration variables, defaults and rules."""

from __future__ import annotations

import pytest

from uptimelab.config import Settings, parse_duration
from uptimelab.errors import ConfigError


def test_the_defaults_are_the_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MONITORING_INTERVAL_MS", "PING_TIMEOUT_MS", "MAX_CONCURRENT_PINGS"):
        monkeypatch.delenv(name, raising=False)
    s = Settings.load()
    assert (s.monitoring_interval_ms, s.ping_timeout_ms) == (300_000, 10_000)
    assert (s.monitoring_location, s.monitoring_region_code) == ("Unknown", "XX")
    assert (s.max_concurrent_pings, s.db_retry_attempts, s.db_retry_delay_ms) == (10, 3, 1000)


def test_the_environment_sets_values_and_arguments_override_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MONITORING_INTERVAL_MS", "120000")
    monkeypatch.setenv("MONITORING_LOCATION", "Paris")
    s = Settings.load(monitoring_location="Berlin")
    assert s.monitoring_interval_ms == 120_000
    assert s.monitoring_location == "Berlin"


def test_database_url_prefers_uptimelab_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://a/b")
    assert Settings.load().database_url == "postgresql://a/b"
    monkeypatch.setenv("UPTIMELAB_DATABASE_URL", "postgresql://c/d")
    assert Settings.load().database_url == "postgresql://c/d"


@pytest.mark.parametrize(
    ("overrides", "variable", "rule"),
    [
        ({"monitoring_interval_ms": 59_999}, "MONITORING_INTERVAL_MS=59999", "at least 60000"),
        ({"ping_timeout_ms": 300_000}, "PING_TIMEOUT_MS=300000", "below the interval"),
        ({"ping_timeout_ms": 0}, "PING_TIMEOUT_MS=0", "above 0"),
        ({"monitoring_location": "  "}, "MONITORING_LOCATION='  '", "must not be empty"),
        ({"monitoring_region_code": ""}, "MONITORING_REGION_CODE=''", "must not be empty"),
        ({"max_concurrent_pings": 0}, "MAX_CONCURRENT_PINGS=0", "from 1 to 1000"),
        ({"max_concurrent_pings": 1001}, "MAX_CONCURRENT_PINGS=1001", "from 1 to 1000"),
        ({"db_retry_attempts": 0}, "DB_RETRY_ATTEMPTS=0", "at least 1"),
    ],
)
def test_a_value_that_breaks_a_rule_names_the_variable_and_the_rule(
    overrides: dict[str, object], variable: str, rule: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(**overrides)
    message = str(info.value)
    assert message.startswith(variable + ":")
    assert rule in message
    assert "\n" not in message


def test_concurrency_goes_past_the_seeds_fifty_to_a_thousand() -> None:
    assert Settings.load(max_concurrent_pings=1000).max_concurrent_pings == 1000


def test_a_value_that_is_not_a_number_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_PINGS", "lots")
    with pytest.raises(ConfigError, match=r"^MAX_CONCURRENT_PINGS='lots': "):
        Settings.load()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("60", 60),
        ("60s", 60),
        ("0.2s", 0.2),
        ("5m", 300),
        ("90min", 5400),
        ("1h30m", 5400),
        ("7d", 604_800),
        ("2 weeks", 1_209_600),
        ("250ms", 0.25),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "0s", "5 months", "-1h", "1h-"])
def test_a_bad_duration_names_the_option(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^--every="):
        parse_duration(text, name="--every")
