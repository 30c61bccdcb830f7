"""The seed's configuration variables, defaults and rules: every rule a constraint of its field,
with both bounds, and every broken rule one ConfigError line naming the variable and its value."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uptimelab.config import (
    MAX_INTERVAL_MS,
    Settings,
    env_name,
    help_for,
    parse_duration,
)
from uptimelab.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
VARIABLES = sorted(
    {env_name(field) for field in Settings.model_fields} | {"DATABASE_URL", "UPTIMELAB_DATA_DIR"}
)
NUMERIC_FIELDS = sorted(
    field for field, info in Settings.model_fields.items() if info.annotation is int
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable of the caller's environment reaches these tests."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def config_error(**overrides: object) -> str:
    with pytest.raises(ConfigError) as info:
        Settings.load(**overrides)
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == 2
    return message


def test_the_defaults_are_the_seeds() -> None:
    s = Settings.load()
    assert (s.monitoring_interval_ms, s.ping_timeout_ms) == (300_000, 10_000)
    assert (s.monitoring_location, s.monitoring_region_code) == ("Unknown", "XX")
    assert (s.max_concurrent_pings, s.db_retry_attempts, s.db_retry_delay_ms) == (10, 3, 1000)
    assert (s.probe_engine, s.spool_max_bytes, s.perf_json) == ("lean", 1 << 30, None)


def test_the_environment_sets_values_and_arguments_override_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MONITORING_INTERVAL_MS", "120000")
    monkeypatch.setenv("MONITORING_LOCATION", "Paris")
    s = Settings.load(monitoring_location="Berlin", ping_timeout_ms=None)
    assert s.monitoring_interval_ms == 120_000
    assert s.monitoring_location == "Berlin"
    assert s.ping_timeout_ms == 10_000  # None means "not given"


def test_database_url_prefers_uptimelab_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://a/b")
    assert Settings.load().database_url == "postgresql://a/b"
    monkeypatch.setenv("UPTIMELAB_DATABASE_URL", "postgresql://c/d")
    assert Settings.load().database_url == "postgresql://c/d"


@pytest.mark.parametrize("variable", ["UPTIMELAB_DATABASE_URL", "UPTIMELAB_PERF_JSON"])
def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "  ")
    s = Settings.load()
    assert (s.database_url, s.perf_json) == (None, None)


def test_an_unknown_setting_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="unknown settings: interval"):
        Settings.load(interval=1)


# Each rule, just broken on each side: the override, the start of the message, the rule's words.
BROKEN = [
    ({"monitoring_interval_ms": 59_999}, "MONITORING_INTERVAL_MS=59999", "from 60000 to 86400000"),
    (
        {"monitoring_interval_ms": MAX_INTERVAL_MS + 1},
        "MONITORING_INTERVAL_MS=86400001",
        "to 86400000",
    ),
    ({"ping_timeout_ms": 0}, "PING_TIMEOUT_MS=0", "above 0"),
    ({"ping_timeout_ms": -5}, "PING_TIMEOUT_MS=-5", "above 0"),
    ({"ping_timeout_ms": MAX_INTERVAL_MS + 1}, "PING_TIMEOUT_MS=86400001", "at most 86400000"),
    (
        {"ping_timeout_ms": 300_000},
        "PING_TIMEOUT_MS=300000",
        "below the interval (MONITORING_INTERVAL_MS=300000)",
    ),
    (
        {"ping_timeout_ms": 60_001, "monitoring_interval_ms": 60_000},
        "PING_TIMEOUT_MS=60001",
        "below the interval (MONITORING_INTERVAL_MS=60000)",
    ),
    ({"monitoring_location": "  "}, "MONITORING_LOCATION='  '", "must not be empty"),
    ({"monitoring_location": "x" * 101}, "MONITORING_LOCATION='xxx", "at most 100 characters"),
    ({"monitoring_region_code": ""}, "MONITORING_REGION_CODE=''", "must not be empty"),
    ({"monitoring_region_code": "r" * 33}, "MONITORING_REGION_CODE='rrr", "at most 32 characters"),
    ({"max_concurrent_pings": 0}, "MAX_CONCURRENT_PINGS=0", "from 1 to 1000"),
    ({"max_concurrent_pings": 1001}, "MAX_CONCURRENT_PINGS=1001", "from 1 to 1000"),
    ({"db_retry_attempts": 0}, "DB_RETRY_ATTEMPTS=0", "from 1 to 100"),
    ({"db_retry_attempts": 101}, "DB_RETRY_ATTEMPTS=101", "from 1 to 100"),
    ({"db_retry_delay_ms": -1}, "DB_RETRY_DELAY_MS=-1", "from 0 to 3600000 ms"),
    ({"db_retry_delay_ms": 3_600_001}, "DB_RETRY_DELAY_MS=3600001", "from 0 to 3600000 ms"),
    ({"db_timeout_ms": 99}, "DB_TIMEOUT_MS=99", "from 100 to 3600000 ms"),
    ({"db_timeout_ms": 3_600_001}, "DB_TIMEOUT_MS=3600001", "from 100 to 3600000 ms"),
    ({"breaker_failures": 0}, "BREAKER_FAILURES=0", "from 1 to 1000"),
    ({"breaker_failures": 1001}, "BREAKER_FAILURES=1001", "from 1 to 1000"),
    ({"breaker_recovery_ms": -1}, "BREAKER_RECOVERY_MS=-1", "from 0 to 86400000 ms"),
    ({"breaker_recovery_ms": 86_400_001}, "BREAKER_RECOVERY_MS=86400001", "to 86400000 ms"),
    ({"breaker_successes": 0}, "BREAKER_SUCCESSES=0", "from 1 to 100"),
    ({"breaker_successes": 101}, "BREAKER_SUCCESSES=101", "from 1 to 100"),
    ({"spool_max_bytes": (1 << 20) - 1}, "SPOOL_MAX_BYTES=1048575", "from 1048576 to"),
    ({"spool_max_bytes": (1 << 40) + 1}, "SPOOL_MAX_BYTES=1099511627777", "to 1099511627776 bytes"),
    ({"probe_engine": "curl"}, "PROBE_ENGINE='curl'", "use lean or httpx"),
    ({"max_concurrent_pings": "lots"}, "MAX_CONCURRENT_PINGS='lots'", "a whole number from 1 to"),
    ({"db_timeout_ms": "1e5"}, "DB_TIMEOUT_MS='1e5'", "a whole number from 100 to"),
]


@pytest.mark.parametrize(("overrides", "start", "rule"), BROKEN)
def test_a_value_that_breaks_a_rule_names_the_variable_and_the_rule(
    overrides: dict[str, object], start: str, rule: str
) -> None:
    message = config_error(**overrides)
    assert message.startswith(start)
    assert rule in message


# Each bound itself is allowed (the timeout's upper bound is the interval's, less a millisecond).
ALLOWED = [
    {"monitoring_interval_ms": 60_000},
    {"monitoring_interval_ms": MAX_INTERVAL_MS, "ping_timeout_ms": MAX_INTERVAL_MS - 1},
    {"ping_timeout_ms": 1},
    {"monitoring_location": "x" * 100, "monitoring_region_code": "r" * 32},
    {"max_concurrent_pings": 1},
    {"max_concurrent_pings": 1000},
    {"db_retry_attempts": 1},
    {"db_retry_attempts": 100},
    {"db_retry_delay_ms": 0},
    {"db_retry_delay_ms": 3_600_000},
    {"db_timeout_ms": 100},
    {"db_timeout_ms": 3_600_000},
    {"breaker_failures": 1, "breaker_successes": 1, "breaker_recovery_ms": 0},
    {"breaker_failures": 1000, "breaker_successes": 100, "breaker_recovery_ms": MAX_INTERVAL_MS},
    {"spool_max_bytes": 1 << 20},
    {"spool_max_bytes": 1 << 40},
    {"probe_engine": "httpx"},
]


@pytest.mark.parametrize("overrides", ALLOWED)
def test_a_value_on_a_bound_is_allowed(overrides: dict[str, object]) -> None:
    settings = Settings.load(**overrides)
    assert {k: getattr(settings, k) for k in overrides} == overrides


def test_a_huge_interval_in_the_environment_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITORING_INTERVAL_MS", "99999999999999999999")
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert str(info.value) == (
        "MONITORING_INTERVAL_MS=99999999999999999999: must be from 60000 to 86400000 ms"
    )


def test_a_huge_interval_stops_the_cli_with_one_line_and_exit_code_2() -> None:
    env = {**os.environ, "MONITORING_INTERVAL_MS": "99999999999999999999"}
    result = subprocess.run(
        [sys.executable, "-m", "uptimelab", "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: MONITORING_INTERVAL_MS=99999999999999999999: must be from 60000 to 86400000 ms\n"
    )


def test_location_and_region_are_stored_without_surrounding_spaces() -> None:
    s = Settings.load(monitoring_location="  Paris ", monitoring_region_code="\teu-west-3 ")
    assert (s.monitoring_location, s.monitoring_region_code) == ("Paris", "eu-west-3")


def test_a_token_too_short_is_named_but_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPTIMELAB_API_TOKEN", "hunter2-secret")
    message = config_error()
    assert message.startswith("UPTIMELAB_API_TOKEN=")
    assert "at least 16 characters" in message
    assert "hunter2" not in message


# -- the data directory and the perf file ------------------------------------------------------


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a directory")
    return path


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("{file}", "it is a file, not a directory"),
        ("{file}/data", "{file} is a file, not a directory"),
        ("{file}/deeper/data", "{file} is a file, not a directory"),
        ("{tmp}/" + "n" * 300, "not a usable path (File name too long)"),
        ("{tmp}/nul\0byte", "not a usable path (it holds a NUL character)"),
    ],
)
def test_a_data_dir_that_cannot_be_a_directory_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, a_file: Path, value: str, rule: str
) -> None:
    value = value.format(file=a_file, tmp=tmp_path)
    message = config_error(data_dir=value)
    assert message.startswith("UPTIMELAB_DATA_DIR=")
    assert rule.format(file=a_file) in message
    if "\0" not in value:  # the environment cannot carry a NUL
        monkeypatch.setenv("UPTIMELAB_DATA_DIR", value)
        assert config_error() == message


def test_an_empty_data_dir_creates_nothing_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UPTIMELAB_DATA_DIR", "")
    env = {**os.environ, "UPTIMELAB_DATABASE_URL": ""}
    result = subprocess.run(
        [sys.executable, "-m", "uptimelab", "sites", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: UPTIMELAB_DATA_DIR='': must not be empty")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["existing", "missing/deeper"])
def test_a_data_dir_that_is_or_can_become_a_directory_is_taken_and_not_created(
    tmp_path: Path, where: str
) -> None:
    (tmp_path / "existing").mkdir()
    path = tmp_path / where
    assert Settings.load(data_dir=str(path)).data_dir == path
    assert path.exists() == (where == "existing")


def test_the_data_dir_expands_the_home_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("UPTIMELAB_DATA_DIR", "~/uptimelab")
    assert Settings.load().data_dir == tmp_path / "uptimelab"


def test_perf_json_is_a_setting_of_its_own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UPTIMELAB_PERF_JSON", str(tmp_path / "perf.json"))
    assert Settings.load().perf_json == tmp_path / "perf.json"
    monkeypatch.setenv("UPTIMELAB_PERF_JSON", str(tmp_path))
    assert config_error() == f"UPTIMELAB_PERF_JSON={str(tmp_path)!r}: is a directory, not a file"


def test_the_package_reads_no_variable_that_is_not_a_setting() -> None:
    # Reading a variable, that is: handing the whole environment on to a child process
    # (`os.environ | {...}`) reads none.
    reading = re.compile(r"os\.environ\s*(?:\[|\.get|\.setdefault)|getenv\(|in os\.environ")
    readers = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "uptimelab").rglob("*.py"))
        if reading.search(path.read_text())
    ]
    assert readers == []


def test_help_text_names_the_variable_and_the_default() -> None:
    assert help_for("monitoring_interval_ms").endswith(
        "Env: MONITORING_INTERVAL_MS. [default 300000]"
    )
    # The data directory's default depends on the machine: not printed, and never "Undefined".
    assert help_for("data_dir").endswith("Env: UPTIMELAB_DATA_DIR.")


# -- arbitrary text ------------------------------------------------------------------------------

# What the environment can carry: no NUL, no lone surrogate.
ENV_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"))


def outcome(**overrides: object) -> Settings | str:
    """The settings, or the ConfigError's message; any other exception propagates."""
    try:
        return Settings.load(**overrides)
    except ConfigError as exc:
        return str(exc)


def assert_settings_or_one_line(result: Settings | str, field: str, text: str) -> None:
    if isinstance(result, str):
        assert result.startswith(f"{env_name(field)}=")
        assert "\n" not in result
    elif field == "data_dir":
        assert result.data_dir == Path(text).expanduser()
    else:
        assert getattr(result, field) == int(text.strip().replace("_", ""))


@given(field=st.sampled_from(NUMERIC_FIELDS), text=st.text())
def test_any_text_for_a_number_gives_settings_or_a_config_error(field: str, text: str) -> None:
    assert_settings_or_one_line(outcome(**{field: text}), field, text)


@given(field=st.sampled_from(NUMERIC_FIELDS), text=ENV_TEXT)
def test_any_text_in_a_numeric_variable_gives_settings_or_a_config_error(
    field: str, text: str
) -> None:
    with mock.patch.dict(os.environ, {env_name(field): text}):
        assert_settings_or_one_line(outcome(), field, text)


@given(text=st.text())
def test_any_text_for_the_data_dir_gives_settings_or_a_config_error(text: str) -> None:
    assert_settings_or_one_line(outcome(data_dir=text), "data_dir", text)


# -- durations ---------------------------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("variable", "name"),
    [
        ("UPTIMELAB_DATA_DIR", "UPTIMELAB_DATA_DIR"),
        ("UPTIMELAB_PERF_JSON", "UPTIMELAB_PERF_JSON"),
        ("UPTIMELAB_CA_BUNDLE", "UPTIMELAB_CA_BUNDLE"),
    ],
)
def test_a_path_whose_tilde_names_no_home_is_one_config_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, name: str
) -> None:
    monkeypatch.setenv(variable, "~no-such-user-of-uptimelab/x")
    with pytest.raises(ConfigError, match=rf"^{name}=.*: its ~ names no home directory$"):
        Settings.load()
