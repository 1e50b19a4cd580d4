"""One config of a several-config run, in its own process (started by run/configs.py).

Reads the settings on stdin, runs the check, writes a ``ConfigAnswer`` or a ``ConfigFailed``
(protocol.py) on stdout. Progress goes to stderr, prefixed with the config, for the
parent to relay. SIGTERM (from the parent, or its death) tears the server down like Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from types import FrameType

from migration_check.errors import CheckError, Interrupted


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)
    from migration_check.protocol import ConfigAnswer, ConfigFailed, decode, encode
    from migration_check.run.check import run_check
    from migration_check.run.project import display_path
    from migration_check.settings import Settings

    settings = decode(Settings, sys.stdin.read())
    from pathlib import Path

    label = display_path(Path(settings.config))
    start = time.monotonic()
    quiet = os.environ.get("CHECK_MIGRATIONS_QUIET") == "1"

    def progress(message: str) -> None:
        if not quiet:
            elapsed = time.monotonic() - start
            print(f"check-migrations: {label}: {message} ({elapsed:.1f}s)", file=sys.stderr)

    out: ConfigAnswer | ConfigFailed
    try:
        out = ConfigAnswer(run_check(settings, progress, history=True))
    except CheckError as exc:
        out = ConfigFailed(type(exc).__name__, exc.message, exc.detail)
    except KeyboardInterrupt:
        return 130
    except Interrupted as exc:
        return 128 + exc.signum
    except Exception as exc:  # a bug in the checker: still an answer for this config
        out = ConfigFailed("WorkerError", f"internal error: {type(exc).__name__}: {exc}",
                           "".join(traceback.format_exception(exc)))  # fmt: skip
    sys.stdout.write(encode(out))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
