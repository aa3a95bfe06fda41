"""The query API: parameters (pure), the service that reads Redis, the HTTP handlers."""
