"""The `cloudml` console script: parse, run (`commands.runners`), turn errors into exit codes."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .commands.grammar import HelpRequested, parse_command
from .exceptions import CloudMLError, InvalidSpec

if TYPE_CHECKING:
    from .client import Client

from .commands.runners import PROG, run


def _error(exc: BaseException) -> None:
    print(f"{PROG}: error: {exc}", file=sys.stderr)


def main(argv: Sequence[str] | None = None, *, client: Client | None = None) -> int:
    """The `cloudml` console script; returns the exit code (`client` is for tests)."""
    args = sys.argv[1:] if argv is None else list(argv)

    try:
        ns = parse_command(args, prog=PROG)

        def make_client() -> Client:
            from .client import Client

            if client is not None:
                return client
            return Client(backend_name=getattr(ns, "backend", None))

        return run(ns, make_client, sys.stdout)
    except HelpRequested as exc:
        sys.stdout.write(exc.text)
        return 0
    except InvalidSpec as exc:
        _error(exc)
        return 2
    except CloudMLError as exc:
        _error(exc)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`cloudml jobs logs ID | head`): stop quietly.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
