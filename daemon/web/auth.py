"""The admin token check of the API listener: constant time, never logged."""

from __future__ import annotations

import hmac

from aiohttp import web

from daemon.core.wire import TOKEN_HEADER, UNAUTHORIZED

QUERY_TOKEN_OFF = (
    f"{UNAUTHORIZED}: a token in ?token= is not accepted (server.allow_token_in_query is "
    f"false); send it in the {TOKEN_HEADER} header"
)


class TokenCheck:
    """Admin token check in constant time; several tokens may be valid during rotation."""

    def __init__(self, tokens: tuple[str, ...], allow_in_query: bool) -> None:
        self._tokens = [t.encode() for t in tokens]
        self._allow_in_query = allow_in_query

    def allows(self, request: web.Request) -> bool:
        """True when the request carries a configured token (header, or query if allowed)."""
        given = request.headers.get(TOKEN_HEADER)
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
        sent_in_query = not self._allow_in_query and "token" in request.query
        if sent_in_query and TOKEN_HEADER not in request.headers:
            return QUERY_TOKEN_OFF
        return UNAUTHORIZED


TOKENS = web.AppKey("tokens", TokenCheck)
