"""HTTP handler of the activity: per id and minute, every pod's counts, behind the admin
token and its errors (`daemon.web.auth.guarded`)."""

from __future__ import annotations

import orjson
from aiohttp import web

from daemon.core.model import RedisOperation
from daemon.core.wire import ACTIVITY_PATH
from daemon.query.activity import Activity, parse_activity
from daemon.web.auth import guarded
from daemon.web.responses import bounded_response

ACTIVITY = web.AppKey("activity", Activity)


@guarded(RedisOperation.QUERY)
async def activity(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/events/activity?namespace=&ids=&minutes=: received, cached, errors and
    rate limited per id and minute, from every pod."""
    answer = await request.app[ACTIVITY].activity(parse_activity(request.query))
    return bounded_response(orjson.dumps(answer.doc), answer.truncated)


def add_activity_routes(app: web.Application, reader: Activity) -> None:
    """Serve the activity on `app` (its guard installed: `daemon.web.auth.install`)."""
    app[ACTIVITY] = reader
    app.router.add_get(ACTIVITY_PATH, activity)
