"""The capture tags of one ingest-side request (`sidecar.capture.from`), for the ingest
endpoints, the mirror and the tee alike: read once per request from its headers, then
given to each of its events (`daemon.core.capture`).

With no rules configured the finder is None and every function here hands back what it
was given: the ingest's path for untagged traffic pays one test per request.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from daemon.core.capture import CaptureFinder, HeaderText
from daemon.core.entry import ParsedEvent
from daemon.core.ndjson import TokenLimited

# A request's tags by header name; None: no capture rules, nothing to look for.
Tags = dict[str, str] | None


def raw_header(headers: Mapping[bytes, bytes]) -> HeaderText:
    """A header by lower-case name, from the ingest server's raw headers, as text (bytes
    that are not UTF-8 as surrogates: check_capture refuses such a tag)."""

    def get(name: str) -> str | None:
        value = headers.get(name.encode("latin-1"))
        return value.decode("utf-8", "surrogateescape") if value is not None else None

    return get


def raw_tags(finder: CaptureFinder | None, headers: Mapping[bytes, bytes]) -> Tags:
    """request_tags() from the ingest server's raw headers (nothing made without rules)."""
    return None if finder is None else finder.request_tags(raw_header(headers))


def request_tags(finder: CaptureFinder | None, header: HeaderText) -> Tags:
    """The tags the header rules find in the request (None when there are no rules)."""
    return finder.request_tags(header) if finder is not None else None


def untagged(finder: CaptureFinder | None, body: bytes, tags: Tags) -> bool:
    """Whether no event of the request can carry a tag from the rules. One that may must
    be built, never counted as limited outright (an NDJSON line's own `capture` field
    makes it a line of another shape, which is always built)."""
    return finder is None or tags is None or not finder.may_tag(body, tags)


def unless_tagged(
    finder: CaptureFinder | None, body: bytes, tags: Tags, limited: TokenLimited
) -> TokenLimited | None:
    """The NDJSON reader's `limited` check, or None (every line built) when the rules
    may tag its events."""
    return limited if untagged(finder, body, tags) else None


def tag_all(finder: CaptureFinder | None, events: list[ParsedEvent], tags: Tags) -> None:
    """Tag the parsed events of a raw token body (in place)."""
    if finder is not None and tags is not None:
        for event in events:
            finder.tag(event, tags)


def tagged(
    finder: CaptureFinder | None, tags: Tags, events: Iterator[ParsedEvent]
) -> Iterator[ParsedEvent]:
    """NDJSON events, each tagged as it is read (the same iterator when no rules)."""
    if finder is None or tags is None:
        return events
    return finder.tagged(events, tags)


def tagged_slices(
    finder: CaptureFinder | None, tags: Tags, slices: Iterator[Iterator[ParsedEvent]]
) -> Iterator[Iterator[ParsedEvent]]:
    """NDJSON slices, their events tagged as they are read."""
    if finder is None or tags is None:
        return slices
    return (finder.tagged(events, tags) for events in slices)
