"""The test suite; a package so that `bench` imports the shared harness as `tests.support`."""
