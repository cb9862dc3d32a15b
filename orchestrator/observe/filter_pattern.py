"""CloudWatch Logs filter patterns, as FilterLogEvents and Live Tail take them.

The forms of CloudWatch's "Filter pattern syntax" page:

- ``""``: every event.
- terms: ``ERROR Exception`` (all of them), ``?ERROR ?WARN`` (any of them), ``ERROR -Exiting``
  (with, without); a term is a word, ``"a quoted phrase"`` any text. Case matters, as there.
- JSON: ``{ $.level = "ERROR" }``, ``{ $.latency > 100 && ($.user = "a*" || $.ok IS TRUE) }``
  with ``= != < > <= >=``, ``*`` in strings, ``IS TRUE|FALSE|NULL``, ``NOT EXISTS``, array
  indexes (``$.a[0].b``); an event that is not a JSON object does not match.
- regular expressions: ``%ERROR [0-9]+%``, limited to CloudWatch's characters (no groups, so no
  nested repetition for a hostile pattern to make the matcher explode).

Space-delimited patterns (``[ip, user, ...]``) are refused with a one-line error. A pattern is
at most 1,024 characters (botocore's model) and nests at most ``MAX_DEPTH`` parentheses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import LrunError

MAX_PATTERN = 1024
MAX_DEPTH = 16
Matcher = Callable[[str], bool]


class FilterPatternError(LrunError):
    """A filter pattern CloudWatch would refuse (InvalidParameterException on the wire)."""


def compile_pattern(pattern: str) -> Matcher:
    """A function telling whether a message matches ``pattern``; raises ``FilterPatternError``."""
    if len(pattern) > MAX_PATTERN:
        raise FilterPatternError(
            f"filter pattern of {len(pattern)} characters is too long: at most {MAX_PATTERN}"
        )
    text = pattern.strip()
    if not text:
        return lambda message: True
    if text.startswith("{"):
        if not text.endswith("}"):
            raise FilterPatternError(
                f"Invalid filter pattern {pattern!r}: a JSON pattern ends with }}"
            )
        return _json_matcher(_JsonParser(text[1:-1]).parse())
    if text.startswith("["):
        raise FilterPatternError(
            f"Invalid filter pattern {pattern!r}: lrun does not filter space-delimited events "
            "([field, ...]); use terms, a JSON pattern or %regex%"
        )
    if len(text) > 1 and text.startswith("%") and text.endswith("%"):
        return _regex(text[1:-1], pattern)
    return _terms(text, pattern)


# Terms


_TERM = re.compile(r'([?-]?)(?:"((?:[^"\\]|\\.)*)"|(\S+))')
_REGEX_ALLOWED = re.compile(r"[A-Za-z0-9:_#=@/;,\-^$?\[\]{}|\\*+. ]*")


def _regex(body: str, pattern: str) -> Matcher:
    if "(" in body or ")" in body or not _REGEX_ALLOWED.fullmatch(body):
        raise FilterPatternError(
            f"Invalid regex in filter pattern {pattern!r}: CloudWatch allows letters, digits, "
            ": _ # = @ / ; , - and the operators ^ $ ? [ ] { } | \\ * + . (no parentheses)"
        )
    try:
        compiled = re.compile(body)
    except re.error as exc:
        raise FilterPatternError(f"Invalid regex in filter pattern {pattern!r}: {exc}") from None
    return lambda message: compiled.search(message) is not None


def _term_matcher(word: str, quoted: bool) -> Matcher:
    if quoted:
        return lambda message: word in message
    # An unquoted term is a word: "ERROR" is in "[ERROR] x" but not in "ERRORS".
    compiled = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(word) + r"(?![A-Za-z0-9_])")
    return lambda message: compiled.search(message) is not None


def _terms(text: str, pattern: str) -> Matcher:
    required: list[Matcher] = []
    optional: list[Matcher] = []
    excluded: list[Matcher] = []
    for found in _TERM.finditer(text):
        sign, quoted, word = found.group(1), found.group(2), found.group(3)
        kind = {"?": optional, "-": excluded}.get(sign, required)
        if quoted is not None:
            kind.append(_term_matcher(quoted.replace('\\"', '"'), True))
        elif '"' in word:
            raise FilterPatternError(f"Invalid filter pattern {pattern!r}: unbalanced quote")
        else:
            kind.append(_term_matcher(word, False))

    def matches(message: str) -> bool:
        if optional and not any(m(message) for m in optional):
            return False
        return all(m(message) for m in required) and not any(m(message) for m in excluded)

    return matches


# JSON patterns


@dataclass(frozen=True)
class _Compare:
    selector: tuple[str | int, ...]
    op: str  # = != < > <= >= or IS / NOT EXISTS
    value: Any


@dataclass(frozen=True)
class _Logic:
    op: str  # && or ||
    left: _Node
    right: _Node


_Node = _Compare | _Logic
_TOKENS = re.compile(
    r"\s*(?:(&&|\|\|)|(\(|\))|(!=|<=|>=|=|<|>)|(\$(?:\.[A-Za-z0-9_\-@]+|\[\d+\])*)"
    r'|("(?:[^"\\]|\\.)*")|(IS\s+TRUE|IS\s+FALSE|IS\s+NULL|NOT\s+EXISTS)|([^\s()&|=!<>"]+))'
)


class _JsonParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[int, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            found = _TOKENS.match(text, pos)
            if found is None or found.end() == pos:
                self._fail(f"unexpected {text[pos:].strip()[:20]!r}")
                break  # unreachable: _fail raises
            kind = next(i for i in range(1, 8) if found.group(i) is not None)
            self.tokens.append((kind, found.group(kind)))
            pos = found.end()
        self.at = 0

    def _fail(self, why: str) -> None:
        raise FilterPatternError(f"Invalid JSON filter pattern '{{{self.text}}}': {why}")

    def _peek(self) -> tuple[int, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self) -> tuple[int, str]:
        token = self._peek()
        if token is None:
            self._fail("it ends too soon")
            raise AssertionError  # unreachable
        self.at += 1
        return token

    def parse(self) -> _Node:
        node = self._or(0)
        if self._peek() is not None:
            self._fail(f"unexpected {self._peek()[1]!r}")  # type: ignore[index]
        return node

    def _or(self, depth: int) -> _Node:
        node = self._and(depth)
        while self._peek() == (1, "||"):
            self._take()
            node = _Logic("||", node, self._and(depth))
        return node

    def _and(self, depth: int) -> _Node:
        node = self._primary(depth)
        while self._peek() == (1, "&&"):
            self._take()
            node = _Logic("&&", node, self._primary(depth))
        return node

    def _primary(self, depth: int) -> _Node:
        kind, value = self._take()
        if (kind, value) == (2, "("):
            if depth >= MAX_DEPTH:
                self._fail(f"parentheses nest deeper than {MAX_DEPTH}")
            node = self._or(depth + 1)
            if self._take() != (2, ")"):
                self._fail("a parenthesis is not closed")
            return node
        if kind != 4:
            self._fail(f"expected a selector such as $.level, got {value!r}")
        selector = _selector(value)
        kind, op = self._take()
        if kind == 6:
            return _Compare(selector, " ".join(op.split()), None)
        if kind != 3:
            self._fail(f"expected an operator (= != < > <= >=) after {value}, got {op!r}")
        kind, raw = self._take()
        if kind == 5:
            return _Compare(selector, op, json.loads(raw))
        if kind != 7:
            self._fail(f"expected a value after {value} {op}, got {raw!r}")
        try:
            return _Compare(selector, op, float(raw))
        except ValueError:
            if op in ("=", "!="):
                return _Compare(selector, op, raw)  # an unquoted string, e.g. 123.123.*
            self._fail(f"{op} takes a number, got {raw!r}")
            raise AssertionError from None  # unreachable


def _selector(text: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    for found in re.finditer(r"\.([A-Za-z0-9_\-@]+)|\[(\d+)\]", text[1:]):
        parts.append(found.group(1) if found.group(1) is not None else int(found.group(2)))
    return tuple(parts)


_MISSING = object()


def _select(document: Any, selector: tuple[str | int, ...]) -> Any:
    for part in selector:
        if isinstance(part, int):
            if not isinstance(document, list) or part >= len(document):
                return _MISSING
            document = document[part]
        elif isinstance(document, dict) and part in document:
            document = document[part]
        else:
            return _MISSING
    return document


def _evaluate(node: _Node, document: Any) -> bool:
    if isinstance(node, _Logic):
        if node.op == "&&":
            return _evaluate(node.left, document) and _evaluate(node.right, document)
        return _evaluate(node.left, document) or _evaluate(node.right, document)
    found = _select(document, node.selector)
    op = node.op
    if op == "NOT EXISTS":
        return found is _MISSING
    if found is _MISSING:
        return False
    if op.startswith("IS "):
        return {"IS TRUE": found is True, "IS FALSE": found is False, "IS NULL": found is None}[op]
    if isinstance(node.value, float):
        if isinstance(found, bool) or not isinstance(found, int | float):
            return op == "!="
        return {
            "=": found == node.value,
            "!=": found != node.value,
            "<": found < node.value,
            ">": found > node.value,
            "<=": found <= node.value,
            ">=": found >= node.value,
        }[op]
    if not isinstance(found, str):
        found = json.dumps(found) if not isinstance(found, int | float) else str(found)
    same = _glob(str(node.value), found)
    return same if op == "=" else not same


def _glob(pattern: str, value: str) -> bool:
    if "*" not in pattern:
        return pattern == value
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), value) is not None


def _json_matcher(node: _Node) -> Matcher:
    def matches(message: str) -> bool:
        start = message.find("{")
        if start < 0:
            return False
        try:
            document = json.loads(message[start:])
        except ValueError:
            return False
        return isinstance(document, dict) and _evaluate(node, document)

    return matches
