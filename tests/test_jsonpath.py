"""expect_json's JSONPath, fuzzed: python-jsonpath (what the assertions use) selects what a
brute-force walk of the same restricted grammar selects, and what jsonpath-ng (a second
implementation) selects; and the verdicts of ``PATH OP VALUE`` / ``len(PATH) OP N`` match a
brute-force evaluation written apart from the assertions' own comparison."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import jsonpath
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonpath_ng.parser import parse as jsonpath_ng_parse

from uptimelab.domain.assertions import JSONPATH, OPERATORS, parse_expect_json

# Few names, so that generated documents often hold generated paths. Names given in brackets
# may be anything a JSON string may hold; dotted names are identifiers that no
# implementation takes for a keyword.
DOTTED = ["a", "b", "status", "items", "_k", "v2"]
BRACKETED = [*DOTTED, "x y", "é", 'say "hi"', "back\\slash", "it's", "tab\tin", "", "0"]

Segment = str | int  # a member name or an array index

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from(["", "UP", "DOWN", "x y", "é", "a"]),
    st.text(max_size=5),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(BRACKETED), inner, max_size=4),
    ),
    max_leaves=12,
)


@st.composite
def paths(draw: st.DrawFn, names: list[str], brackets: bool) -> tuple[str, list[Segment]]:
    """A singular JSONPath of up to four segments, as text and as its segments."""
    segments: list[Segment] = draw(
        st.lists(st.one_of(st.sampled_from(names), st.integers(-3, 3)), max_size=4)
    )
    text = "$"
    for segment in segments:
        if isinstance(segment, int):
            text += f"[{segment}]"
        elif segment in DOTTED and not (brackets and draw(st.booleans())):
            text += f".{segment}"
        elif brackets:
            text += f"[{json.dumps(segment, ensure_ascii=False)}]"
        else:
            text += f"['{segment}']"
    return text, segments


def walk(document: Any, segments: list[Segment]) -> list[Any]:
    """The brute-force selection: follow each segment, or select nothing."""
    node = document
    for segment in segments:
        if isinstance(segment, str):
            if not (isinstance(node, dict) and segment in node):
                return []
            node = node[segment]
        else:
            if not (isinstance(node, list) and -len(node) <= segment < len(node)):
                return []
            node = node[segment]
    return [node]


@settings(max_examples=300)
@given(document=json_values, path=paths(BRACKETED, brackets=True))
def test_python_jsonpath_selects_what_a_brute_force_walk_selects(
    document: Any, path: tuple[str, list[Segment]]
) -> None:
    text, segments = path
    compiled = JSONPATH.compile(text)
    assert isinstance(compiled, jsonpath.JSONPath)
    assert compiled.singular_query()
    assert compiled.findall(document) == walk(document, segments)


@settings(max_examples=300)
@given(document=json_values, path=paths(["a", "b", "status", "x y"], brackets=False))
def test_python_jsonpath_and_jsonpath_ng_select_alike(
    document: Any, path: tuple[str, list[Segment]]
) -> None:
    text, _ = path
    ours = JSONPATH.findall(text, document)
    theirs = [match.value for match in jsonpath_ng_parse(text).find(document)]
    assert ours == theirs


def _normal(value: Any) -> Any:
    """A JSON value in a form where == is JSON equality (1 == 1.0, true != 1)."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, int | float):
        return ("number", Fraction(value))
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", tuple(map(_normal, value)))
    return ("object", frozenset((k, _normal(v)) for k, v in value.items()))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def verdict(seen: list[Any], length: bool, operator: str, value: Any) -> bool:
    """Whether ``PATH OP VALUE`` (``len(PATH)`` if ``length``) holds for what PATH selected."""
    if not seen:
        return False
    found = seen[0]
    if length:
        if not isinstance(found, str | list | dict):
            return False
        found = len(found)
    if operator == "==":
        return bool(_normal(found) == _normal(value))
    if operator == "!=":
        return bool(_normal(found) != _normal(value))
    if operator == "contains":
        if isinstance(found, list):
            return any(_normal(item) == _normal(value) for item in found)
        if isinstance(found, str | dict):
            return isinstance(value, str) and value in found
        return False
    if _number(found) and _number(value):
        a, b = Fraction(found), Fraction(value)
    elif isinstance(found, str) and isinstance(value, str):
        a, b = found, value  # type: ignore[assignment]
    else:
        return False
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[operator]


@settings(max_examples=400)
@given(
    document=json_values,
    path=paths(BRACKETED, brackets=True),
    operator=st.sampled_from(OPERATORS),
    value=json_values,
)
def test_path_op_value_verdicts_match_a_brute_force_evaluation(
    document: Any, path: tuple[str, list[Segment]], operator: str, value: Any
) -> None:
    text, segments = path
    expectation = parse_expect_json(f"{text} {operator} {json.dumps(value, ensure_ascii=False)}")
    holds = expectation.check(document) is None
    assert holds is verdict(walk(document, segments), False, operator, value)


@settings(max_examples=300)
@given(
    document=json_values,
    path=paths(BRACKETED, brackets=True),
    operator=st.sampled_from([op for op in OPERATORS if op != "contains"]),
    n=st.integers(-1, 5),
)
def test_len_path_op_n_verdicts_match_a_brute_force_evaluation(
    document: Any, path: tuple[str, list[Segment]], operator: str, n: int
) -> None:
    text, segments = path
    expectation = parse_expect_json(f"len({text}) {operator} {n}")
    holds = expectation.check(document) is None
    assert holds is verdict(walk(document, segments), True, operator, n)


def test_the_generators_reach_hits_misses_and_every_kind_of_segment() -> None:
    """The oracle is only as good as what it is fed: paths that select something, and not."""
    document = {"a": [{"x y": 1.0}, True], "é": {"": None}}
    assert walk(document, ["a", 0, "x y"]) == [1.0] == JSONPATH.findall('$.a[0]["x y"]', document)
    assert walk(document, ["a", -1]) == [True] == JSONPATH.findall("$.a[-1]", document)
    assert walk(document, ["é", ""]) == [None] == JSONPATH.findall('$["é"][""]', document)
    assert walk(document, ["a", 2]) == [] == JSONPATH.findall("$.a[2]", document)
    # An index selects in arrays only: not an object's member named by the number (hypothesis
    # found python-jsonpath's default environment doing so; jsonpath-ng and RFC 9535 do not).
    assert walk({"0": None}, [0]) == [] == JSONPATH.findall("$[0]", {"0": None})
    assert JSONPATH.findall("$.a[0]", {"a": {"0": 1}}) == []
    assert verdict([1], False, "==", 1.0)
    assert not verdict([True], False, "==", 1)
