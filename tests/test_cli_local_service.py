"""`cloudml local service install|uninstall|status` through the real `cloudml` entry point:
without a user manager (as on this machine and in CI: the commands to run are printed), with a
`systemctl` that works (a stand-in program on PATH, recording what it is asked), and its
errors, each one line. What the unit runs is tested in tests/backends/local/test_service.py."""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_cloudml.cli import main

USER = pwd.getpwuid(os.getuid()).pw_name
LINGER = Path("/var/lib/systemd/linger", USER).exists()
NO_MANAGER = re.compile(r"^systemctl (--user )?is not (usable|installed) here \(.+\)")


@pytest.fixture(autouse=True)
def units(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's own XDG_CONFIG_HOME, and no user manager for `systemctl --user` to reach."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    return tmp_path / "config" / "systemd" / "user"


def cloudml(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def only_unit(units: Path) -> Path:
    (unit,) = units.glob("*.service")
    return unit


def test_install_status_uninstall_without_a_user_manager(
    capsys: pytest.CaptureFixture[str], units: Path, isolated_home: Path
) -> None:
    code, out, err = cloudml(capsys, "local", "service", "install")
    unit = only_unit(units)
    name = unit.name
    lines = out.splitlines()
    assert (code, err) == (0, "")
    assert lines[0] == f"wrote {unit}"
    assert NO_MANAGER.match(lines[1]) and lines[1].endswith("; run these where it is:")
    assert lines[2:4] == [
        "  systemctl --user daemon-reload",
        f"  systemctl --user enable --now {name}",
    ]
    assert lines[4:] == (
        []
        if LINGER
        else [f"  loginctl enable-linger {USER}  # serve after a reboot, with no login"]
    )
    assert f"--home {isolated_home}" in unit.read_text()

    code, out, _ = cloudml(capsys, "local", "service", "install")
    assert out.splitlines()[0] == f"{unit} is up to date"

    code, out, _ = cloudml(capsys, "local", "service", "status")
    assert code == 0
    assert f"unit:    {name}, installed ({unit})" in out
    assert re.search(r"^systemd: systemctl .*is not (usable|installed) here", out, re.M)
    assert f"keeper:  not running for {isolated_home}" in out
    code, out, _ = cloudml(capsys, "local", "service", "status", "-o", "json")
    info = json.loads(out)
    assert info["installed"] is True and info["keeper_running"] is False
    assert info["name"] == name and info["active"] is None and NO_MANAGER.match(info["problem"])

    code, out, err = cloudml(capsys, "local", "service", "uninstall")
    lines = out.splitlines()
    assert (code, err) == (0, "") and not unit.exists()
    assert lines[0] == f"removed {unit}"
    assert NO_MANAGER.match(lines[1]) and lines[1].endswith("; run these where it is:")
    assert lines[2:] == [f"  systemctl --user stop {name}", "  systemctl --user daemon-reload"]

    code, out, _ = cloudml(capsys, "local", "service", "uninstall")
    assert code == 0 and out.startswith(f"no unit {name} to remove")
    code, out, _ = cloudml(capsys, "local", "service", "status")
    assert f"{name}, not installed" in out


def test_each_home_has_its_unit_and_the_default_home_the_plain_name(
    capsys: pytest.CaptureFixture[str],
    units: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CLOUDML_HOME")  # the default home, in the Jupyter data dir
    assert cloudml(capsys, "local", "service", "install")[0] == 0
    assert cloudml(capsys, "local", "service", "install", "--home", str(tmp_path / "a"))[0] == 0
    assert cloudml(capsys, "local", "service", "install", "--home", str(tmp_path / "b"))[0] == 0
    names = {p.name for p in units.glob("*.service")}
    assert "jupyter-cloudml-keeper.service" in names
    others = names - {"jupyter-cloudml-keeper.service"}
    assert len(others) == 2
    assert all(re.fullmatch(r"jupyter-cloudml-keeper-[0-9a-f]{12}\.service", n) for n in others)
    code, out, _ = cloudml(capsys, "local", "service", "uninstall", "--home", str(tmp_path / "a"))
    assert code == 0 and out.startswith("removed ") and len(list(units.glob("*.service"))) == 2


FAKE_SYSTEMCTL = """#!/bin/sh
# systemctl --user, as a user manager would answer; every call recorded.
echo "$*" >> "$FAKE_SYSTEMCTL_LOG"
state="$FAKE_SYSTEMCTL_LOG.enabled"
case "$2" in
  show-environment|daemon-reload|try-restart) exit 0 ;;
  enable)
    if [ -n "$FAKE_SYSTEMCTL_REFUSE" ]; then echo "$FAKE_SYSTEMCTL_REFUSE" >&2; exit 1; fi
    touch "$state" ;;
  disable) rm -f "$state" ;;
  is-active) if [ -f "$state" ]; then echo active; else echo inactive; exit 3; fi ;;
  is-enabled) if [ -f "$state" ]; then echo enabled; else echo disabled; exit 1; fi ;;
  *) echo "unknown command $2" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `systemctl` first on PATH that works; returns the file of its calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "systemctl"
    program.write_text(FAKE_SYSTEMCTL)
    program.chmod(0o755)
    log = tmp_path / "systemctl.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SYSTEMCTL_LOG", str(log))
    return log


def asked(log: Path) -> list[str]:
    """What systemctl was asked to change (queries left out)."""
    queries = ("--user show-environment", "--user is-active", "--user is-enabled")
    calls = log.read_text().splitlines() if log.exists() else []
    return [call for call in calls if not call.startswith(queries)]


def test_with_a_working_systemctl_install_enables_and_uninstall_disables(
    capsys: pytest.CaptureFixture[str],
    units: Path,
    systemctl: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, err = cloudml(capsys, "local", "service", "install")
    name = only_unit(units).name
    assert (code, err) == (0, "")
    assert asked(systemctl) == ["--user daemon-reload", f"--user enable --now {name}"]
    assert "ran: systemctl --user daemon-reload" in out
    assert f"ran: systemctl --user enable --now {name}" in out
    assert f"{name}: active, enabled\n" in out
    assert "is not usable" not in out

    systemctl.unlink()
    cloudml(capsys, "local", "service", "install")  # unchanged: nothing to restart
    assert f"--user try-restart {name}" not in asked(systemctl)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # the GPUs its jobs see change
    cloudml(capsys, "local", "service", "install")
    assert asked(systemctl)[-1] == f"--user try-restart {name}"  # the running unit takes it up

    code, out, _ = cloudml(capsys, "local", "service", "status")
    assert "systemd: active, enabled" in out

    systemctl.unlink()
    code, out, err = cloudml(capsys, "local", "service", "uninstall")
    assert (code, err) == (0, "")
    assert asked(systemctl) == [f"--user disable --now {name}", "--user daemon-reload"]
    assert list(units.glob("*.service")) == []
    code, out, _ = cloudml(capsys, "local", "service", "status")
    assert "systemd: inactive, disabled" in out


def test_errors_are_one_line(
    capsys: pytest.CaptureFixture[str],
    units: Path,
    systemctl: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_SYSTEMCTL_REFUSE", "Failed to enable unit: Access denied")
    code, out, err = cloudml(capsys, "local", "service", "install")
    name = only_unit(units).name
    assert code == 1
    assert err == (
        f"cloudml: error: systemctl --user enable --now {name} failed: "
        "Failed to enable unit: Access denied\n"
    )

    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "not-a-folder"))
    code, out, err = cloudml(capsys, "local", "service", "install")
    assert code == 1 and out == ""
    assert err.startswith("cloudml: error: cannot write the unit file ")
    assert err.count("\n") == 1

    code, _, err = cloudml(capsys, "local", "service", "instal")
    assert code == 2 and err.count("\n") == 1 and "invalid choice: 'instal'" in err
    code, _, err = cloudml(capsys, "local", "service")
    assert code == 2 and err.startswith("cloudml: error: missing ACTION")
    code, _, err = cloudml(capsys, "local", "servise", "status")
    assert code == 2 and "(did you mean service?)" in err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cloudml(capsys, "local", "service", "--help")
    assert code == 0 and out.startswith("usage: cloudml local service [-h] [--home DIR]")
    assert "install (write the unit" in out
    code, out, _ = cloudml(capsys, "--help")
    assert code == 0 and "the local backend on this machine ('local VERB'):" in out
    assert re.search(r"^  service +install, uninstall or show", out, re.M)


def test_the_real_console_script(units: Path, isolated_home: Path) -> None:
    script = Path(sys.executable).with_name("cloudml")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "jupyter_cloudml.cli"]
    done = subprocess.run(
        [*argv, "local", "service", "install"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stderr == ""
    assert NO_MANAGER.match(done.stdout.splitlines()[1])
    done = subprocess.run(
        [*argv, "local", "service", "status", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and json.loads(done.stdout)["installed"] is True
