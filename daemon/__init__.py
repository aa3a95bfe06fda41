"""events-cache: a sidecar that keeps the last events per API key and destination in Redis."""

from importlib import metadata

try:
    __version__ = metadata.version("events-cache-sidecar")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0.0.0+unknown"
