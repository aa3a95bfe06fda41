"""HTTP: the pod-private ingest listener, the API listener (query, ops, OpenAPI), and
what both share (JSON responses, middleware, the admin token check)."""
