"""The front door: the ingest and mirror listeners on a purpose-built HTTP/1.1 protocol
(httptools), bounded per request in time and bytes."""
