"""The sending half of `events-cache replay`: where the key goes, the pace, the answers.

Standard library only, like the rest of the command line. One POST per original, on a
kept-alive connection per host, never retried (a failure is reported; the
`Idempotency-Key` header lets the receiver drop a copy it already has if the user runs
the replay again). The pace is a schedule, one request every 1/rate seconds, so a slow
answer does not lead to a burst after it.
"""

from __future__ import annotations

import http.client
import re
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from daemon.cli import deepjson

PLACEHOLDER = "{token}"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SEND_TIMEOUT_S = 30.0
MAX_LISTED = 100  # failures and unreplayable entries named in the summary; the rest counted
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class UsageError(Exception):
    """The command line cannot be used as given; the message says how to fix it."""


@dataclass(frozen=True)
class Target:
    """Where the originals go, and where each one's API key is put: a `{token}`
    placeholder in the URL (percent-encoded there), a header, or both."""

    url: str
    token_header: str = ""

    @classmethod
    def parse(cls, url: str, token_header: str | None) -> Target:
        """Checked: http(s) with a host, and a place for the key."""
        parts = urllib.parse.urlsplit(url.replace(PLACEHOLDER, "k"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"--to must be an http(s):// URL, got {url!r}")
        header = token_header or ""
        if header and not _HEADER_NAME.fullmatch(header):
            raise UsageError(f"--token-header must be a header name, got {header!r}")
        if PLACEHOLDER not in url and not header:
            raise UsageError(
                "say where the API key goes: a {token} placeholder in --to (e.g. "
                "https://collector/api/v1/s2s/event?token={token}) or --token-header NAME "
                "(e.g. X-Auth-Token)"
            )
        return cls(url, header)

    def request(self, key: str, uid: str) -> tuple[str, dict[str, str]]:
        """The URL and headers of one original's POST."""
        url = self.url.replace(PLACEHOLDER, urllib.parse.quote(key, safe=""))
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: uid}
        if self.token_header:
            headers[self.token_header] = key
        return url, headers


@dataclass
class Summary:
    """What the replay did: answers by status, failures and what it could not send."""

    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    failed: int = 0
    malformed: int = 0  # entries with no original to send (a malformed body)
    unreplayable: list[dict[str, Any]] = field(default_factory=list)
    not_replayable: int = 0
    already_sent: int = 0  # destination entries whose original another one sent

    def answer(self, uid: str, key: str, status: int | None, text: str) -> None:
        """Count one answer (None: no answer at all)."""
        self.statuses["no answer" if status is None else str(status)] += 1
        if status is None or not 200 <= status <= 299:
            self.failed += 1
            if len(self.failures) < MAX_LISTED:
                self.failures.append({"uid": uid, "key": key, "status": status, "answer": text})

    def cannot(self, uid: str, why: str) -> None:
        """An entry whose original cannot be replayed."""
        self.not_replayable += 1
        if len(self.unreplayable) < MAX_LISTED:
            self.unreplayable.append({"uid": uid, "reason": why})

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "statuses": dict(self.statuses),
            "failed": self.failed,
            "failures": self.failures,
            "malformed_skipped": self.malformed,
            "not_replayable": self.not_replayable,
            "unreplayable": self.unreplayable,
            "already_sent": self.already_sent,
        }

    def lines(self, dry_run: bool) -> list[str]:
        """The summary for a person."""
        counts = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        verb = "would send" if dry_run else "sent"
        out = [f"{verb} {_count(self.sent, 'original')}" + (f" ({counts})" if counts else "")]
        for failure in self.failures:
            answer = failure["answer"]
            said = f"{failure['status']} {answer}" if failure["status"] else f"no answer ({answer})"
            out.append(f"  failed: uid {failure['uid']} key {failure['key']}: {said}")
        if self.failed > len(self.failures):
            out.append(f"  ... and {self.failed - len(self.failures)} more")
        if self.malformed:
            out.append(f"skipped {_count(self.malformed, 'malformed entry')}: no original")
        if self.not_replayable:
            out.append(f"not replayable: {_count(self.not_replayable, 'entry')}")
            out += [f"  uid {u['uid']}: {u['reason']}" for u in self.unreplayable]
            if self.not_replayable > len(self.unreplayable):
                out.append(f"  ... and {self.not_replayable - len(self.unreplayable)} more")
        if self.already_sent:
            out.append(
                f"{_count(self.already_sent, 'more destination entry')} of events already "
                "sent (each original is sent once)"
            )
        return out


def _count(n: int, noun: str) -> str:
    """ "1 entry", "2 entries", "3 originals"."""
    if n == 1:
        return f"1 {noun}"
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n} {plural}"


class Sender:
    """POSTs at most `rate` a second (0: as fast as answers come)."""

    def __init__(self, rate: float, timeout: float = SEND_TIMEOUT_S) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._timeout = timeout
        self._connections: dict[tuple[str, str], http.client.HTTPConnection] = {}

    def _pace(self) -> None:
        now = time.monotonic()
        if self._next > now:
            time.sleep(self._next - now)
            now = self._next
        self._next = now + self._interval

    def post(self, url: str, headers: dict[str, str], body: bytes) -> tuple[int | None, str]:
        """Send one; (status, the answer's first 200 characters) or (None, the error)."""
        self._pace()
        parts = urllib.parse.urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        conn = self._connection(parts.scheme, parts.netloc)
        try:
            conn.request("POST", target, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read()[:200].decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as e:
            self._drop(parts.scheme, parts.netloc)
            return None, f"{type(e).__name__}: {e}"
        if response.will_close:
            self._drop(parts.scheme, parts.netloc)
        return response.status, text

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        conn = self._connections.get((scheme, netloc))
        if conn is None:
            cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            conn = self._connections[(scheme, netloc)] = cls(netloc, timeout=self._timeout)
        return conn

    def _drop(self, scheme: str, netloc: str) -> None:
        conn = self._connections.pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()


def body_of(original: Any) -> bytes:
    """The original as JSON, as it was cached."""
    return deepjson.dumps(original).encode()
