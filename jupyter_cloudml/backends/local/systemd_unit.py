"""The home's keeper as a systemd user service: its unit file, and `systemctl --user` where that
works (`cloudml local service install|uninstall|status`).

The unit is `$XDG_CONFIG_HOME/systemd/user/jupyter-cloudml-keeper[-HASH].service` (no HASH for
the default home, a hash of the home's path for any other). It runs `service.py` for the home
with this interpreter, carrying the environment that decides what the keeper imports and reads
and what the jobs it starts find (`CARRIED`). Where `systemctl --user` cannot reach a user
manager (a container, CI, `sudo` without a login session), the unit file is still written and
the commands to run are returned instead.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ...exceptions import BackendUnavailable, InvalidSpec
from ...models import ServiceInfo
from .keeper import keeper_record, keeper_running
from .scheduler import default_home

UNIT_STEM = "jupyter-cloudml-keeper"
PROGRAM = "jupyter_cloudml.backends.local.service"
#: Variables of the installing process the unit carries, as they were: the code the keeper
#: imports, the configuration it reads, the tools and GPUs the jobs it starts see.
CARRIED = (
    "PATH",
    "PYTHONPATH",
    "JUPYTER_CONFIG_DIR",
    "JUPYTER_CONFIG_PATH",
    "JUPYTER_DATA_DIR",
    "JUPYTER_PATH",
    "JUPYTER_PLATFORM_DIRS",
    "CLOUDML_SERVING_PYTHON",
    "CUDA_VISIBLE_DEVICES",
)
#: `enable` links the unit here (its `WantedBy=`); removed with the unit.
WANTS = "default.target.wants"
LINGER_DIR = Path("/var/lib/systemd/linger")
SYSTEMCTL_TIMEOUT = 60.0
_PLAIN = re.compile(r"[A-Za-z0-9_@+=:,./-]+")


def unit_name(home: str) -> str:
    """The unit of this home: the plain name for the default home, else one with a hash."""
    if home == os.path.abspath(default_home()):
        return f"{UNIT_STEM}.service"
    return f"{UNIT_STEM}-{hashlib.sha256(home.encode()).hexdigest()[:12]}.service"


def unit_dir() -> Path:
    """Where systemd looks for a user's own units (`$XDG_CONFIG_HOME/systemd/user`)."""
    config = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if os.path.isabs(config) else Path.home() / ".config"
    return base / "systemd" / "user"


def _escaped(text: str, command: bool) -> str:
    """`text` for a unit file: no specifier (`%`) or, in a command, variable (`$`) expanded."""
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return text.replace("$", "$$") if command else text


def _word(arg: str) -> str:
    """One word of `ExecStart=`, quoted when it needs to be."""
    return arg if _PLAIN.fullmatch(arg) else f'"{_escaped(arg, command=True)}"'


def unit_text(home: str) -> str:
    """The unit that runs the home's keeper in the foreground, restarted if it fails."""
    if any(c in home for c in "\n\r\0"):
        raise InvalidSpec(f"a unit file cannot name a home whose path has a line break: {home!r}")
    command = [sys.executable, "-m", PROGRAM, "--home", home]
    env = {"CLOUDML_HOME": home}
    env.update({k: os.environ[k] for k in CARRIED if k in os.environ})
    environment = [
        f'Environment="{_escaped(f"{key}={value}", command=False)}"'
        for key, value in env.items()
        if not any(c in value for c in "\n\r\0")
    ]
    lines = [
        "# Written by `cloudml local service install`; `cloudml local service uninstall`",
        "# removes it.",
        "[Unit]",
        f"Description=jupyter-cloudml: the keeper of {home.replace('%', '%%')}",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(map(_word, command)),
        *environment,
        "Restart=on-failure",
        "RestartSec=5",
        "# The jobs and endpoints the keeper starts outlive it, as they outlive the kernel that",
        "# submitted them: stopping the service stops the keeper only.",
        "KillMode=process",
        "UMask=0077",
        "",
        "[Install]",
        "WantedBy=default.target",
    ]
    return "\n".join(lines) + "\n"


def _run(*args: str) -> tuple[int, str, str]:
    """`systemctl --user ARGS`: exit code, output, and the first line of its complaint."""
    exe = shutil.which("systemctl") or "systemctl"
    try:
        done = subprocess.run(
            [exe, "--user", *args], capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT
        )
    except (OSError, subprocess.SubprocessError) as e:
        return 1, "", str(e)
    complaint = next((line for line in done.stderr.splitlines() if line.strip()), "")
    return done.returncode, done.stdout.strip(), complaint or f"exit code {done.returncode}"


def manager_problem() -> str:
    """Why `systemctl --user` cannot be used here, in one line; "" when it can."""
    if shutil.which("systemctl") is None:
        return "systemctl is not installed here (no systemd)"
    code, _, complaint = _run("show-environment")
    return f"systemctl --user is not usable here ({complaint})" if code else ""


def _systemctl(*args: str) -> str:
    """Run `systemctl --user ARGS`, or raise why it failed; what was run."""
    code, _, complaint = _run(*args)
    if code:
        raise BackendUnavailable(f"{_command(*args)} failed: {complaint}")
    return f"ran: {_command(*args)}"


def _command(*args: str) -> str:
    return shlex.join(["systemctl", "--user", *args])


def _linger_advice() -> list[str]:
    """`loginctl enable-linger USER` unless it is on: without it, a user's services start at
    their first login, not at boot."""
    user = pwd.getpwuid(os.getuid()).pw_name
    if (LINGER_DIR / user).exists():
        return []
    return [f"loginctl enable-linger {shlex.quote(user)}  # serve after a reboot, with no login"]


def _write(path: Path, text: str) -> None:
    """Replace the unit file (0644; its folders made 0755, never writable by others)."""
    try:
        missing = []
        folder = path.parent
        while not folder.is_dir():
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            folder.mkdir(mode=0o755, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), "w") as out:
            out.write(text)
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except OSError as e:
        raise BackendUnavailable(f"cannot write the unit file {path}: {e}") from e


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise BackendUnavailable(f"cannot read the unit file {path}: {e}") from e


def _info(
    home: str, problem: str, done: Sequence[str] = (), todo: Sequence[str] = ()
) -> ServiceInfo:
    """The service's state now, with what was done and what is left to do."""
    name = unit_name(home)
    path = unit_dir() / name
    active = enabled = None
    if not problem:
        active = _run("is-active", name)[1] or "unknown"
        enabled = _run("is-enabled", name)[1] or "not-found"
    record = keeper_record(home)
    return ServiceInfo(
        name=name,
        unit_file=str(path),
        serves=home,
        installed=path.is_file(),
        keeper_running=keeper_running(home),
        keeper_is_service=bool(record and record.get("service")),
        problem=problem,
        active=active,
        enabled=enabled,
        done=tuple(done),
        todo=tuple(todo),
    )


def install(home: str) -> ServiceInfo:
    """Write the home's unit; enable and start it if `systemctl --user` works, else return the
    commands that do. A unit that changed is restarted if it runs."""
    name = unit_name(home)
    path = unit_dir() / name
    text = unit_text(home)
    old = _read(path)
    problem = manager_problem()
    # A keeper the unit runs now gets the changed unit (by hand: whether it runs is not known).
    restart = old is not None and old != text
    if restart and not problem:
        restart = _run("is-active", name)[1] == "active"
    _write(path, text)
    done = [f"wrote {path}" if old != text else f"{path} is up to date"]
    steps = [("daemon-reload",), ("enable", "--now", name)]
    if restart:
        steps.append(("try-restart", name))
    if problem:
        return _info(home, problem, done, [*(_command(*s) for s in steps), *_linger_advice()])
    done += [_systemctl(*step) for step in steps]
    return _info(home, problem, done, _linger_advice())


def uninstall(home: str) -> ServiceInfo:
    """Stop and disable the home's unit if `systemctl --user` works, and remove it; else the
    commands that stop it where it runs."""
    name = unit_name(home)
    path = unit_dir() / name
    problem = manager_problem()
    link = unit_dir() / WANTS / name
    if not path.is_file() and not link.is_symlink():
        return _info(home, problem, [f"no unit {name} to remove (none at {path})"])
    done = [] if problem else [_systemctl("disable", "--now", name)]
    try:
        if link.is_symlink():  # what `enable` made, left behind when `disable` cannot run
            link.unlink()
        path.unlink(missing_ok=True)
    except OSError as e:
        raise BackendUnavailable(f"cannot remove the unit file {path}: {e}") from e
    done.append(f"removed {path}")
    if problem:
        return _info(home, problem, done, [_command("stop", name), _command("daemon-reload")])
    done.append(_systemctl("daemon-reload"))
    return _info(home, problem, done)


def status(home: str) -> ServiceInfo:
    """Whether the unit file exists, what systemd says of it, whether a keeper watches now."""
    path = unit_dir() / unit_name(home)
    problem = manager_problem()
    return _info(home, problem, todo=_linger_advice() if path.is_file() else [])
