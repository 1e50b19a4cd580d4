"""``python -m migration_check.worker``: the worker's entry point (see main.py)."""

from migration_check.worker.main import main

if __name__ == "__main__":
    raise SystemExit(main())
