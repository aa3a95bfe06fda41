"""The mirror listener: the target of a mirrored copy of the ingest's traffic.

nginx's `mirror`, Envoy's `request_mirror_policies` and Istio's `mirror` send a copy of
each request and throw the answer away, so the listener takes any method and path,
finds the API key with the `token_from` rules and caches the body exactly as
`POST /v1/token/{token}/events` does (same body limits, same parse, same admission); it
answers 202 once the body is read, never waiting for Redis. A request without a key is
counted as invalid. It never sits in the ingest's own request path. `daemon.web.front`
reads its requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

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
class Mirror:
    """What the mirror handler needs: the ingest's intake and the key rules."""

    intake: Intake
    finder: TokenFinder

    def mirrored(
        self, method: str, target: bytes, headers: RawHeaders, raw: bytes
    ) -> Answer | Work:
        """Any method, any path: a mirrored copy of an ingest request."""
        intake = self.intake
        body = intake.inflated(raw, headers)
        if isinstance(body, Answer):
            return body
        if not body:
            # A tracking pixel's GET, a CORS preflight: nothing the ingest would cache as
            # an event, so not an "empty body" error either (as the proxy's no_body).
            intake.count_refusal(RejectReason.NO_BODY)
            log.debug("mirrored request not cached", reason="no body", method=method)
            return accepted(Outcome())
        path, query = split_target(target)
        text_headers = TextHeaders(headers)
        found = self.finder.find(path, query, text_headers, body)
        if found.bad_id:
            intake.count_refusal(RejectReason.BAD_ID)
            log.debug("mirrored request not cached", reason=found.bad_id, method=method)
            return accepted(Outcome(), 1, [LineError(1, found.bad_id)])
        if found.token is None:
            reason = self.finder.reason()
            intake.metrics.invalid.inc()
            log.debug("mirrored request not cached", reason=reason, method=method)
            return accepted(Outcome(), 1, [LineError(1, reason)])
        try:
            tags = request_tags(intake.admission.capture_finder, text_headers.get)
            events = intake.events(body, found.token, parsed=found.parsed, tags=tags)
        except TooManyEvents as e:
            return intake.too_many_events(e.count)
        return intake.admit(events, len(events), accepted)
