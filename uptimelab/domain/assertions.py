"""What a page must say: a site's assertions and request options, parsed and checked without I/O.

A site may ask more of a ping than an expected status::

    expect_body      a regular expression searched in the decoded body (its first 64 KiB)
    expect_json      PATH OP VALUE or len(PATH) OP N, PATH a JSONPath (RFC 9535) selecting one
                     value, OP one of == != < <= > >= contains, VALUE a JSON literal:
                     $.status == "UP", len($.items) > 0, $.tags contains "eu"
    max_response_ms  the slowest response that still counts as up

A ping that answers with an expected status but fails one of them is ``down`` with the category
``assertion``; its message says which assertion failed and what was seen.

JSONPath is python-jsonpath's (pure Python, RFC 9535, compiled once per expression). Regular
expressions are the ``regex`` module's, with the syntax of ``re``, searched under a time limit:
a pattern that backtracks catastrophically on a page costs that site a failed ping, never the
event loop every other site's ping runs on.

A site's request options are checked here too: ``headers`` (names as RFC 9110 tokens, values one
line of visible ASCII; the headers that frame a request are ours) and ``body`` (for methods that
take one, its Content-Type given in ``headers``).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonpath
import regex

from ..errors import SiteError

# RFC 9535 as written: python-jsonpath's default environment also lets an index select an
# object's member of that name (`$[0]` on {"0": 1} gives 1), which jsonpath-ng and the RFC do not.
JSONPATH = jsonpath.JSONPathEnvironment(strict=True)

BODY_LIMIT_BYTES = 64 * 1024
"""The most of a body an assertion sees (bytes), before and after decoding."""
MAX_BODY_CHARS = 64 * 1024
"""The longest request body (characters) a site may send."""
MAX_EXPECT_CHARS = 1000
REGEX_TIMEOUT_S = 0.05
"""How long one search of ``expect_body`` may take (seconds) before the ping fails instead."""
OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "contains")
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
SEEN_CHARS = 120
# Headers that say how a request is framed or where it goes are set by the probe itself.
RESERVED_HEADERS = frozenset({"host", "connection", "content-length", "transfer-encoding", "te"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\x20-\x7e\t]*")
_OPERATOR = re.compile(r"\s(==|!=|<=|>=|<|>|contains)\s")
_LEN = re.compile(r"^len\(\s*(.+?)\s*\)$", re.S)


@dataclass(frozen=True, slots=True)
class JsonExpectation:
    """One parsed ``expect_json``: a singular JSONPath, whether its length is compared, an
    operator and the JSON value it is compared with."""

    text: str
    path: jsonpath.JSONPath
    length: bool
    operator: str
    value: Any

    def check(self, document: Any) -> str | None:
        """None if ``document`` (parsed JSON) satisfies the expectation, else what was seen."""
        found = self.path.findall(document)
        if not found:
            return "no value at the path"
        seen = found[0]
        if self.length:
            if not isinstance(seen, str | list | dict):
                return f"saw {_shown(seen)}, which has no length"
            seen = len(seen)
        ok = _compare(seen, self.operator, self.value)
        if ok is None:
            return f"saw {_shown(seen)}, which cannot be compared with {self.operator}"
        return None if ok else f"saw {_shown(seen)}"


@dataclass(frozen=True, slots=True)
class Body:
    """What the probe read of a body: at most BODY_LIMIT_BYTES, decoded (gzip, ...), its
    charset, and whether there was more."""

    content: bytes
    charset: str | None = None
    truncated: bool = False

    def text(self) -> str:
        try:
            return self.content.decode(self.charset or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class Assertions:
    """A site's assertions, parsed once (see :func:`assertions`)."""

    expect_body: regex.Pattern[str] | None = None
    expect_json: JsonExpectation | None = None
    max_response_ms: int | None = None

    @property
    def reads_body(self) -> bool:
        """Whether checking needs the body (otherwise the probe reads and drops it)."""
        return self.expect_body is not None or self.expect_json is not None

    def check(self, body: Body | None, response_time_ms: int) -> str | None:
        """None when every assertion holds, else a message naming the first that fails and
        what was seen (not yet redacted: the probe redacts every message)."""
        limit = self.max_response_ms
        if limit is not None and response_time_ms > limit:
            return f"max_response_ms {limit} failed: the response took {response_time_ms} ms"
        if not self.reads_body:
            return None
        if body is None:
            return "the response has no body to check"
        if self.expect_body is not None:
            text = body.text()
            try:
                found = self.expect_body.search(text, timeout=REGEX_TIMEOUT_S)
            except TimeoutError:
                return (
                    f"expect_body {self.expect_body.pattern!r} failed: the search took longer "
                    f"than {REGEX_TIMEOUT_S * 1000:g} ms"
                )
            if found is None:
                return (
                    f"expect_body {self.expect_body.pattern!r} failed: not in the body "
                    f"({_size(body)}), which starts {_shown(text)}"
                )
        if self.expect_json is not None:
            expectation = self.expect_json
            try:
                document = json.loads(body.content)
            except (ValueError, RecursionError):
                text = body.text()
                return (
                    f"expect_json {expectation.text} failed: the body ({_size(body)}) is not "
                    f"JSON; it starts {_shown(text)}"
                )
            seen = expectation.check(document)
            if seen is not None:
                return f"expect_json {expectation.text} failed: {seen}"
        return None


NO_ASSERTIONS = Assertions()


def assertions(
    expect_body: str | None, expect_json: str | None, max_response_ms: int | None
) -> Assertions:
    """A site's assertions, parsed. Raises SiteError for a bad regular expression or JSON
    expression (cached: sites share few distinct expressions)."""
    if expect_body is None and expect_json is None and max_response_ms is None:
        return NO_ASSERTIONS
    return _assertions(expect_body, expect_json, max_response_ms)


@functools.lru_cache(maxsize=4096)
def _assertions(
    expect_body: str | None, expect_json: str | None, max_response_ms: int | None
) -> Assertions:
    return Assertions(
        None if expect_body is None else parse_expect_body(expect_body),
        None if expect_json is None else parse_expect_json(expect_json),
        max_response_ms,
    )


def parse_expect_body(pattern: str) -> regex.Pattern[str]:
    """``pattern`` compiled (the syntax of Python's ``re``). Raises SiteError."""
    if not pattern:
        raise SiteError("expect_body: the regular expression is empty")
    if len(pattern) > MAX_EXPECT_CHARS:
        raise SiteError(f"expect_body: longer than {MAX_EXPECT_CHARS} characters")
    try:
        return regex.compile(pattern, regex.VERSION0)
    except regex.error as exc:
        raise SiteError(f"expect_body {pattern!r}: not a regular expression: {exc}") from None


def parse_expect_json(text: str) -> JsonExpectation:
    """``PATH OP VALUE`` or ``len(PATH) OP N`` parsed. Raises SiteError naming what is wrong."""

    def bad(why: str) -> SiteError:
        return SiteError(
            f"expect_json {text!r}: {why} (use PATH OP VALUE or len(PATH) OP N, e.g. "
            '$.status == "UP" or len($.items) > 0)'
        )

    if len(text) > MAX_EXPECT_CHARS:
        raise bad(f"longer than {MAX_EXPECT_CHARS} characters")
    stripped = text.strip()
    # The operator splits the expression where both sides parse: a path's filter or a string
    # value may hold an operator of its own, so each occurrence is tried, the last first.
    splits = list(_OPERATOR.finditer(stripped))
    if not splits:
        raise bad(f"no operator (one of {', '.join(OPERATORS)}, with spaces around it)")
    # The most telling problem is reported: one found further along (a path that selects many
    # values) over one found earlier (a split whose right side is no JSON).
    problem, rank = "", -1

    def seen(why: str, at: int) -> None:
        nonlocal problem, rank
        if at > rank:
            problem, rank = why, at

    for match in reversed(splits):
        left, operator = stripped[: match.start()].strip(), match.group(1)
        try:
            value = json.loads(stripped[match.end() :])
        except ValueError:
            seen("the value is not a JSON literal (strings take double quotes)", 0)
            continue
        if isinstance(value, float) and not math.isfinite(value):
            seen("the value is not a finite number", 1)
            continue
        length = _LEN.match(left)
        path_text = length.group(1) if length else left
        try:
            path = JSONPATH.compile(path_text)
        except jsonpath.JSONPathError as exc:
            seen(f"{path_text!r} is not a JSONPath: {str(exc).splitlines()[0]}", 2)
            continue
        if not isinstance(path, jsonpath.JSONPath) or not path.singular_query():
            seen(f"{path_text!r} may select more than one value", 3)
            continue
        if length and (
            operator == "contains" or not isinstance(value, int) or isinstance(value, bool)
        ):
            seen("len(PATH) is compared with an integer, by == != < <= > >=", 4)
            continue
        return JsonExpectation(" ".join(stripped.split()), path, bool(length), operator, value)
    raise bad(problem)


def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` if a request may carry them. Raises SiteError naming a bad header (never its
    value: it may be a secret)."""
    if not isinstance(headers, Mapping):
        raise SiteError("headers: give a JSON object of header names and values")
    seen: set[str] = set()
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise SiteError(f"headers: {name!r} is not a header name")
        if name.lower() in seen:
            raise SiteError(f"headers: {name!r} is given twice")
        seen.add(name.lower())
        if name.lower() in RESERVED_HEADERS:
            raise SiteError(f"headers: {name!r} is set by the probe, not by a site")
        if not isinstance(value, str) or not _FIELD_VALUE.fullmatch(value):
            raise SiteError(f"headers: the value of {name!r} must be one line of ASCII text")
    return dict(headers)


def parse_headers(lines: Iterable[str]) -> dict[str, str] | None:
    """``Name: value`` lines (as ``--header`` takes them) as a mapping, None for no lines.
    Raises SiteError for a line without a colon or a name given twice (never quoting a value)."""
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name:
            raise SiteError(f"header {name[:60]!r}: use 'Name: value'")
        if any(k.lower() == name.lower() for k in headers):
            raise SiteError(f"headers: {name!r} is given twice")
        headers[name] = value.strip()
    return headers or None


def check_body(body: str, method: str, headers: Mapping[str, str] | None) -> str:
    """``body`` if ``method`` takes one and ``headers`` say its Content-Type. Raises SiteError."""
    if method not in BODY_METHODS:
        raise SiteError(f"body: a {method} request has no body (use {', '.join(BODY_METHODS)})")
    if len(body) > MAX_BODY_CHARS:
        raise SiteError(f"body: longer than {MAX_BODY_CHARS} characters")
    if not any(k.lower() == "content-type" for k in headers or {}):
        raise SiteError("body: give its Content-Type in headers")
    return body


def _compare(seen: Any, operator: str, value: Any) -> bool | None:
    """``seen OP value`` as JSON values compare (true is not 1); None when they cannot."""
    if operator in ("==", "!="):
        return _json_equal(seen, value) == (operator == "==")
    if operator == "contains":
        if isinstance(seen, str):
            return isinstance(value, str) and value in seen
        if isinstance(seen, list):
            return any(_json_equal(item, value) for item in seen)
        if isinstance(seen, dict):
            return isinstance(value, str) and value in seen
        return None
    numbers = _is_number(seen) and _is_number(value)
    if not (numbers or isinstance(seen, str) and isinstance(value, str)):
        return None
    if operator == "<":
        return bool(seen < value)
    if operator == "<=":
        return bool(seen <= value)
    if operator == ">":
        return bool(seen > value)
    return bool(seen >= value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _shown(value: Any) -> str:
    """A seen value, short: JSON for data, quoted for text."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= SEEN_CHARS else text[: SEEN_CHARS - 3] + "..."


def _size(body: Body) -> str:
    more = ", more not read" if body.truncated else ""
    return f"{len(body.content)} bytes{more}"
