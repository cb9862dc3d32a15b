"""CloudWatch filter patterns (the forms of CloudWatch's "Filter pattern syntax" page)."""

from __future__ import annotations

import pytest

from orchestrator.observe.filter_pattern import MAX_PATTERN, FilterPatternError, compile_pattern

LINES = [
    "[ERROR] something failed",
    "[INFO] all good",
    "ERRORS are plural",
    "[WARN] disk nearly full",
    '{"level": "ERROR", "message": "boom", "latency": 1200, "user": {"id": "u-17"}, "ok": false}',
    '{"level": "INFO", "message": "fine", "latency": 12, "tags": ["a", "b"], "ok": true}',
    "Exiting after ERROR",
]


def matching(pattern: str) -> list[int]:
    matches = compile_pattern(pattern)
    return [i for i, line in enumerate(LINES) if matches(line)]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("", list(range(len(LINES)))),
        ("ERROR", [0, 4, 6]),  # a word: not in ERRORS
        ("ERROR failed", [0]),
        ("?WARN ?INFO", [1, 3, 5]),
        ("ERROR -Exiting", [0, 4]),
        ('?"all good" ?"nearly full" -INFO', [3]),
        ('-"after ERROR" ERROR', [0, 4]),
        ('"disk nearly"', [3]),
        ('"ERRO"', [0, 2, 4, 6]),  # a quoted phrase is any text
        ("%ERRORS? [a-z]+%", [2]),
        ("%^.ERROR.%", [0]),
        ('{ $.level = "ERROR" }', [4]),
        ("{ $.latency > 100 }", [4]),
        ("{ $.latency <= 12 && $.ok IS TRUE }", [5]),
        ('{ $.user.id = "u-*" }', [4]),
        ('{ $.tags[1] = "b" }', [5]),
        ('{ ($.level = "INFO" || $.latency >= 1000) && $.message != "boom" }', [5]),
        ("{ $.missing NOT EXISTS }", [4, 5]),
        ("{ $.ok IS FALSE }", [4]),
    ],
)
def test_patterns_match_as_cloudwatch_documents(pattern: str, expected: list[int]) -> None:
    assert matching(pattern) == expected


def test_terms_match_words_inside_json_lines_too() -> None:
    assert compile_pattern("boom")(LINES[4])
    assert not compile_pattern("boo")(LINES[4])


@pytest.mark.parametrize(
    "pattern",
    [
        "{ $.level = }",
        '{ $.level = "ERROR"',
        "{ level = 1 }",
        "{ $.a > abc }",
        "[ip, user]",
        "%(a+)+%",  # groups are not CloudWatch's regex: no nested repetition to explode
        'ERROR "unbalanced',
    ],
)
def test_bad_patterns_are_refused_in_one_line(pattern: str) -> None:
    with pytest.raises(FilterPatternError) as caught:
        compile_pattern(pattern)
    assert "\n" not in str(caught.value)


def test_attack_pattern_size_and_nesting_are_bounded() -> None:
    with pytest.raises(FilterPatternError, match="at most 1024"):
        compile_pattern("a" * (MAX_PATTERN + 1))
    deep = "{ " + "(" * 40 + '$.a = "b"' + ")" * 40 + " }"
    with pytest.raises(FilterPatternError, match="nest deeper"):
        compile_pattern(deep)
