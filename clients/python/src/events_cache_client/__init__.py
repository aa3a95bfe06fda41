"""Fire-and-forget client of the events-cache sidecar's ingest API.

from events_cache_client import Client
cache = Client()                      # EVENTS_CACHE_SOCKET / EVENTS_CACHE_URL
cache.incoming("js.abc123", raw_body)  # never raises, never blocks
cache.processed("pg_main", event, error="column type mismatch")
cache.close()
"""

from events_cache_client._aio import AsyncClient
from events_cache_client._core import Stats
from events_cache_client._settings import DEFAULT_SOCKET, SOCKET_ENV, URL_ENV, Settings
from events_cache_client._sync import Client

__all__ = ["DEFAULT_SOCKET", "SOCKET_ENV", "URL_ENV", "AsyncClient", "Client", "Settings", "Stats"]
__version__ = "0.1.0"
