"""The mirror listener: the target of a mirrored copy of the ingest's traffic.

nginx's `mirror`, Envoy's `request_mirror_policies` and Istio's `mirror` send a copy of
each request and throw the answer away, so the listener takes any method and path,
finds the API key with the `token_from` rules and caches the body exactly as
`POST /v1/token/{token}/events` does (same body limits, same parse, same admission); it
answers once the body is read, never waiting for Redis: 202 with the ingest's counts, or
`sidecar.mirror.reply` (a stand-in collector for a tracker in tests). A request without a
key is counted as invalid. It never sits in the ingest's own request path.
`daemon.web.front` reads its requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from daemon.config.reply import MirrorReplySettings
from daemon.core.accounting import Outcome
from daemon.core.model import RejectReason
from daemon.core.parse import LineError, TooManyEvents
from daemon.core.tokenfrom import TokenFinder, split_target
from daemon.web.capturing import request_tags
from daemon.web.ingest import Answer, Intake, RawHeaders, Work, accepted

log = structlog.get_logger(__name__)


class TextHeaders(Mapping[str, str]):
    """A request's headers as text for the `header:` rules: names case-insensitive,
    values decoded as aiohttp does (bytes that are not UTF-8 kept as surrogates, so a
    key made of them is refused rather than stored altered)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: RawHeaders) -> None:
        self._raw = raw

    def __getitem__(self, name: str) -> str:
        return self._raw[name.lower().encode("latin-1")].decode("utf-8", "surrogateescape")

    def __iter__(self) -> Any:
        return (name.decode("latin-1") for name in self._raw)

    def __len__(self) -> int:
        return len(self._raw)


@dataclass(frozen=True, slots=True)
class Reply:
    """The mirror's answer (`sidecar.mirror.reply`): its status and body replace the
    ingest's 202 and counts when set; its headers go on every answer, refusals too, so
    that a browser tracker can read them (CORS)."""

    status: int = 202
    body: bytes = b""  # b"": the ingest answer's JSON
    headers: bytes = b""  # header lines, each as b"\r\nName: value"

    @classmethod
    def of(cls, settings: MirrorReplySettings) -> Reply:
        """The answer the settings describe (checked at load: 2xx, JSON, clean headers)."""
        lines = b"".join(f"\r\n{name}: {value}".encode() for name, value in settings.headers.items)
        return cls(settings.status, settings.body.encode(), lines)

    def accepted(
        self, outcome: Outcome, invalid: int = 0, errors: list[LineError] | None = None
    ) -> Answer:
        """The answer to a request taken (its events cached, limited or without a key)."""
        plain = accepted(outcome, invalid, errors)
        if self.status == 202 and not self.body and not self.headers:
            return plain
        return Answer(self.status, self.body or plain.body, plain.close, self.headers)

    def framed(self, answer: Answer) -> Answer:
        """A refusal (413, 400, 503) as it is, with the configured headers."""
        if not self.headers:
            return answer
        return Answer(answer.status, answer.body, answer.close, answer.headers + self.headers)

    def preflight(self) -> Answer:
        """A body-less OPTIONS (a CORS preflight): the status and headers, no body."""
        return Answer(self.status, b"", headers=self.headers)


@dataclass(frozen=True, slots=True)
class Mirror:
    """What the mirror handler needs: the ingest's intake, the key rules and the answer."""

    intake: Intake
    finder: TokenFinder
    reply: Reply = Reply()

    def mirrored(
        self, method: str, target: bytes, headers: RawHeaders, raw: bytes
    ) -> Answer | Work:
        """Any method, any path: a mirrored copy of an ingest request."""
        intake, reply = self.intake, self.reply
        body = intake.inflated(raw, headers)
        if isinstance(body, Answer):
            return reply.framed(body)
        if not body:
            # A tracking pixel's GET, a CORS preflight: nothing the ingest would cache as
            # an event, so not an "empty body" error either (as the proxy's no_body).
            intake.count_refusal(RejectReason.NO_BODY)
            log.debug("mirrored request not cached", reason="no body", method=method)
            return reply.preflight() if method == "OPTIONS" else reply.accepted(Outcome())
        path, query = split_target(target)
        text_headers = TextHeaders(headers)
        found = self.finder.find(path, query, text_headers, body)
        if found.bad_id:
            intake.count_refusal(RejectReason.BAD_ID)
            log.debug("mirrored request not cached", reason=found.bad_id, method=method)
            return reply.accepted(Outcome(), 1, [LineError(1, found.bad_id)])
        if found.token is None:
            reason = self.finder.reason()
            intake.metrics.invalid.inc()
            log.debug("mirrored request not cached", reason=reason, method=method)
            return reply.accepted(Outcome(), 1, [LineError(1, reason)])
        try:
            tags = request_tags(intake.admission.capture_finder, text_headers.get)
            events = intake.events(body, found.token, parsed=found.parsed, tags=tags)
        except TooManyEvents as e:
            return reply.framed(intake.too_many_events(e.count))
        return intake.admit(events, len(events), reply.accepted)
