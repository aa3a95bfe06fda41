"""One copy of what the tests and the benchmarks need to drive real processes.

- `servers`: free ports, polling, Redis-compatible binaries and a server launcher;
- `topologies`: TLS, ACL, Sentinel and Cluster set-ups built from those servers;
- `daemon`: the daemon in-process (its own event loop in a thread) or as a subprocess,
  both with one client API over its real socket and ports;
- `scrape`: /metrics parsing, metric sums, the accounting identity, Jitsu's list keys;
- `prometheus`: a real Prometheus server, its HTTP API, Kubernetes-like scrape targets;
- `load`: the fault suite's paced ingest load and the bench's closed-loop generator;
- `procstat`: RSS, CPU time and percentiles.

`bench` imports all but `topologies` outside any test run, so those import no pytest;
`topologies` is for tests only (a missing tool skips the test).
"""
