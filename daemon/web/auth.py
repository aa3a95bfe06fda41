"""The admin token check of the API listener: constant time, never logged, every
refusal counted (`events_cache_auth_failures_total`); and the guard of every admin
route: the token first, then a parameter's QueryError as 400 (named), the store's
StoreUnavailable as 503 (reported to RedisHealth under the route's operation, so it is
counted in `events_cache_redis_errors_total`)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import Counter

from daemon.core.model import RedisOperation
from daemon.core.wire import TOKEN_HEADER, UNAUTHORIZED
from daemon.query.params import QueryError
from daemon.store.client import StoreUnavailable
from daemon.store.health import RedisHealth
from daemon.web.responses import error_response

_BEARER = "bearer "

QUERY_TOKEN_OFF = (
    f"{UNAUTHORIZED}: a token in ?token= is not accepted (server.allow_token_in_query is "
    f"false); send it in the {TOKEN_HEADER} header"
)


class TokenCheck:
    """Admin token check in constant time; several tokens may be valid during rotation."""

    def __init__(
        self, tokens: tuple[str, ...], allow_in_query: bool, failures: Counter | None = None
    ) -> None:
        self._tokens = [t.encode() for t in tokens]
        self._allow_in_query = allow_in_query
        self._failures = failures

    def allows(self, request: web.Request) -> bool:
        """True when the request carries a configured token: in X-Admin-Token, else as
        `Authorization: Bearer <token>`, else in the query when allowed."""
        given = request.headers.get(TOKEN_HEADER)
        if given is None:
            given = bearer_token(request.headers.get("Authorization"))
        if given is None and self._allow_in_query:
            given = request.query.get("token")
        if given is None:
            return False
        candidate = given.encode("utf-8", "surrogateescape")
        matched = False
        for token in self._tokens:  # compare with every token: no early exit
            matched |= hmac.compare_digest(candidate, token)
        return matched

    def refusal(self, request: web.Request) -> str | None:
        """None when the request may pass; else the 401's message (Jitsu's, and why when
        the token was sent where it is not accepted)."""
        if self.allows(request):
            return None
        if self._failures is not None:
            self._failures.inc()
        sent_in_query = not self._allow_in_query and "token" in request.query
        if sent_in_query and TOKEN_HEADER not in request.headers:
            return QUERY_TOKEN_OFF
        return UNAUTHORIZED


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (the scheme's case does not
    matter, RFC 9110 11.1); None for any other header or none."""
    if authorization is None or authorization[: len(_BEARER)].lower() != _BEARER:
        return None
    return authorization[len(_BEARER) :].strip(" \t") or None


TOKENS = web.AppKey("tokens", TokenCheck)
HEALTH = web.AppKey("health", RedisHealth)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install(app: web.Application, tokens: TokenCheck, health: RedisHealth) -> None:
    """What `guarded` handlers need on `app`, whatever routes are added and in what order."""
    app[TOKENS] = tokens
    app[HEALTH] = health


def guarded(operation: RedisOperation) -> Callable[[Handler], Handler]:
    """The admin token first; then QueryError as 400, and Redis failures as 503 and
    reported as a failure of `operation`."""

    def decorate(handler: Handler) -> Handler:
        async def guard(request: web.Request) -> web.StreamResponse:
            refused = request.app[TOKENS].refusal(request)
            if refused is not None:
                return error_response(401, refused)
            try:
                return await handler(request)
            except QueryError as e:
                return error_response(400, str(e))
            except StoreUnavailable as e:
                request.app[HEALTH].failed(e, operation)
                return error_response(503, f"Redis unavailable: {e}")

        return guard

    return decorate
