"""`python -m daemon` does what the `events-cache` console script does."""

from daemon.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
