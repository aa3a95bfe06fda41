"""HTTP handler of the error signatures (`GET /api/v1/errors`), behind the admin token
and its errors (`daemon.web.auth.guarded`: 400 for a bad parameter, 503 without Redis)."""

from __future__ import annotations

from aiohttp import web

from daemon.core.model import RedisOperation
from daemon.core.wire import ERRORS_PATH
from daemon.query.errors import ErrorSignatures
from daemon.query.errorsquery import parse_errors
from daemon.web.auth import guarded
from daemon.web.responses import bounded_response

ERRORS = web.AppKey("errors", ErrorSignatures)


@guarded(RedisOperation.ERRORS)
async def errors(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/errors?namespace=&ids=&since=: error signatures, most frequent first."""
    query = parse_errors(request.query)
    answer = await request.app[ERRORS].errors(query)
    return bounded_response(answer.body, answer.truncated)


def add_errors_routes(app: web.Application, signatures: ErrorSignatures) -> None:
    """Serve the error signatures on `app` (its guard installed: `daemon.web.auth.install`)."""
    app[ERRORS] = signatures
    app.router.add_get(ERRORS_PATH, errors)
