"""Where a mirrored or proxied request carries its API key: the `token_from` rules.

A rule is `kind:name`, tried in the order configured; the first that finds non-empty
text decides: that is the key when the id rule of `daemon.core.ids` takes it, else no
key is found (`bad_id`: counted, nothing cached):

- `query:token`: the first `token` query parameter;
- `header:X-Auth-Token`: the header (names are case-insensitive);
- `path:/api/v1/event/{token}`: the request path (percent-decoded) matches the template
  as a whole; `{token}` is one path segment, any other `{name}` matches a segment too;
- `json:api_key`: a top-level string field of a body that is a JSON object.

The body is parsed only when a `json` rule is reached, at most once, and the parsed
document is handed back so that the body's own parse can reuse it. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

import orjson

from daemon.core.ids import check_id

TOKEN_PLACEHOLDER: Final = "{token}"
_PLACEHOLDER = re.compile(r"\{[^{}/]*\}")


class RuleKind(StrEnum):
    """Where a rule looks."""

    QUERY = "query"
    HEADER = "header"
    PATH = "path"
    JSON = "json"


_KINDS: Final = tuple(k.value for k in RuleKind)


class RuleError(ValueError):
    """A rule that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class TokenRule:
    """One parsed rule; `pattern` only for path templates."""

    kind: RuleKind
    name: str
    pattern: re.Pattern[str] | None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def parse_rule(text: str) -> TokenRule:
    """`kind:name` as a rule; RuleError saying what is wrong."""
    kind_text, sep, name = text.partition(":")
    kind_text = kind_text.strip()
    if not sep or kind_text not in _KINDS:
        raise RuleError(
            f"{text!r}: unknown kind {kind_text!r}; a rule is kind:name with kind one of "
            f"{', '.join(_KINDS)}"
        )
    kind, name = RuleKind(kind_text), name.strip()
    if not name:
        raise RuleError(f"{text!r}: the {kind} rule needs a name after the colon")
    if kind is not RuleKind.PATH:
        return TokenRule(kind, name)
    if not name.startswith("/"):
        raise RuleError(f"{text!r}: a path template starts with /")
    if name.count(TOKEN_PLACEHOLDER) != 1:
        raise RuleError(f"{text!r}: a path template holds {TOKEN_PLACEHOLDER} exactly once")
    return TokenRule(kind, name, _template(name))


def _template(template: str) -> re.Pattern[str]:
    parts, last = [], 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[last : match.start()]))
        parts.append("(?P<token>[^/]+)" if match.group() == TOKEN_PLACEHOLDER else "[^/]+")
        last = match.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts))


def check_rules(texts: Sequence[str]) -> str | None:
    """Why a list of rules cannot be used (each faulty rule named), or None."""
    errors = []
    for n, text in enumerate(texts, start=1):
        try:
            parse_rule(text)
        except RuleError as e:
            errors.append(f"rule {n} {e}")
    return "; ".join(errors) or None


@dataclass(frozen=True, slots=True)
class Found:
    """The key found (None: none), and `(document,)` when a json rule parsed the body
    (for parse_token_body's `parsed`), else None."""

    token: str | None
    parsed: tuple[Any] | None = None
    bad_id: str = ""  # why the key found cannot be an id (nothing is then cached)


class TokenFinder:
    """Tries the configured rules in order on one request."""

    def __init__(self, rules: Sequence[str]) -> None:
        self.rules = tuple(parse_rule(r) for r in rules)
        self.reads_body = any(r.kind is RuleKind.JSON for r in self.rules)

    def find(
        self,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes | None = None,
    ) -> Found:
        """The first key a rule yields; json rules are skipped when `body` is None. The
        first non-empty text a rule finds is the key, as the ingest would take it: when
        the id rule refuses it, no key is found (`bad_id` says why), the next rules
        are not tried."""
        parsed: tuple[Any] | None = None
        tried_body = False
        for rule in self.rules:
            if rule.kind is RuleKind.JSON:
                if body is None:
                    continue
                if not tried_body:
                    parsed, tried_body = _load(body), True
                doc = parsed[0] if parsed is not None else None
                value = doc.get(rule.name) if isinstance(doc, dict) else None
            elif rule.kind is RuleKind.QUERY:
                value = query.get(rule.name)
            elif rule.kind is RuleKind.HEADER:
                value = headers.get(rule.name)
            else:
                assert rule.pattern is not None
                match = rule.pattern.fullmatch(path)
                value = match.group("token") if match else None
            if isinstance(value, str) and value:
                problem = id_problem(value)
                return Found(None, parsed, problem) if problem else Found(value, parsed)
        return Found(None, parsed)

    def reason(self) -> str:
        """What a request without a key was tried with, for the log."""
        tried = ", ".join(str(r) for r in self.rules) or "no rules configured"
        return f"no API key found by the token_from rules ({tried})"


def id_problem(value: str) -> str | None:
    """Why a key found cannot be stored: the id rule (check_id), or text that is not valid
    (a header's bytes that are not UTF-8 arrive as surrogates)."""
    problem = check_id(value)
    if problem is not None:
        return f"API key {problem}"
    try:
        value.encode()
    except UnicodeEncodeError:
        return "API key must be valid UTF-8"
    return None


def _load(body: bytes) -> tuple[Any] | None:
    """`(document,)`, or None when the body is not JSON (the body's own parse then finds
    it malformed again: the price of a rare case, not worth a second path)."""
    try:
        return (orjson.loads(body),)
    except orjson.JSONDecodeError:
        return None


def split_target(target: bytes) -> tuple[str, dict[str, str]]:
    """The percent-decoded path and the query (the first value of each name) of a
    request target, split at its first "?" as the ingest's server splits it: a "#",
    which a client should not send, is part of the path (Go's ParseRequestURI), so a
    target /a#b?token=k still has its token."""
    text = target.decode("utf-8", "surrogateescape")
    path, _, query = text.partition("?")
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name, value)
    return unquote(path, errors="surrogateescape"), params
