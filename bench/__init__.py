"""Benchmarks of the events-cache daemon against the best this machine can do.

`python -m bench` starts its own Valkey and daemon, runs the scenarios of issue 4
(P1, P1b, P2, P3, P3b, P4, P5), each against a baseline measured in the same run, and
prints one table; `python -m bench --smoke` runs every scenario for a second or so.
The server launcher, the daemon harness and the load generator are the test suite's
(`tests.support`): run it from the repository root, where `tests` is importable.
"""
