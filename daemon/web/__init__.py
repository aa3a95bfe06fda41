"""HTTP: the ingest side (the pod-private ingest listener, the mirror and the tee proxy,
on the front door of `daemon.web.front`) and the API listener on aiohttp (query, live
tail, ops, OpenAPI, viewer; its JSON responses, middleware and admin token check)."""
