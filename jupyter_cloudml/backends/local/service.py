"""The home's keeper as a service: the command of the systemd user unit that
`cloudml local service install` writes (`systemd_unit.py`).

    python -m jupyter_cloudml.backends.local.service --home HOME

It reads the configuration when it starts, as every `LocalBackend` does (`c.LocalBackend.*` in
`jupyter_cloudml_config.py`, with `HOME` as the home), so a changed configuration takes effect
with `systemctl --user restart`; then it runs `keeper.serve`.
"""

from __future__ import annotations

import argparse
import sys

from ...exceptions import BackendUnavailable, CloudMLError
from .keeper import serve
from .scheduler import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jupyter_cloudml.backends.local.service",
        description="Watch a local backend's home in the foreground, for a service manager.",
    )
    parser.add_argument("--home", required=True, help="the home to watch (e.g. /data/cloudml)")
    home = parser.parse_args(argv).home

    def settings() -> Settings:
        from ...config import load_config
        from .backend import LocalBackend

        try:
            config = load_config()
        except Exception as e:  # a broken config file: say which, in one line
            raise BackendUnavailable(f"cannot read the configuration: {e}") from e
        return LocalBackend(config=config, home=home).settings

    try:
        return serve(home, settings)
    except CloudMLError as exc:
        print(f"keeper of {home}: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
