"""HTTP handler of the journey: one event's way through the cache, behind the admin
token and its errors (`daemon.web.auth.guarded`)."""

from __future__ import annotations

import orjson
from aiohttp import web

from daemon.core.model import RedisOperation
from daemon.core.wire import JOURNEY_PATH
from daemon.query.journey import JourneyNotFound, Journeys
from daemon.query.params import parse_journey
from daemon.web.auth import guarded
from daemon.web.responses import bounded_response, error_response

JOURNEYS = web.AppKey("journeys", Journeys)


@guarded(RedisOperation.QUERY)
async def journey(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/events/journey?event_id=: the API key's entries and every destination's
    outcome for one event, from every pod; 404 when no cached entry carries the id."""
    event_id = parse_journey(request.query)
    try:
        answer = await request.app[JOURNEYS].journey(event_id)
    except JourneyNotFound:
        return error_response(
            404,
            f"no cached entry carries event id {event_id[:100]!r} (or it is older "
            "than sidecar.journey.retention_minutes)",
        )
    return bounded_response(orjson.dumps(answer.doc), answer.truncated)


def add_journey_routes(app: web.Application, journeys: Journeys) -> None:
    """Serve the journey on `app` (its guard installed: `daemon.web.auth.install`)."""
    app[JOURNEYS] = journeys
    app.router.add_get(JOURNEY_PATH, journey)
