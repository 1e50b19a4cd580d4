"""``python -m migration_check.worker``: the worker's entry point (see process.py)."""

from migration_check.worker.process import main

if __name__ == "__main__":
    raise SystemExit(main())
