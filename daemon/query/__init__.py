"""The read path: what a query asks (params), how the lists are read within the answer's
bounds (lists), what of them is answered (selection), and the service that puts them
together for the API's handlers. Above the store and the pipeline, below the web: no
HTTP here, so every answer's rules are unit-testable without a server."""
