"""`%%cloudml_train` and `%cloudml` in a real IPython shell, on the local backend."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from jupyter_cloudml.client import Client
from jupyter_cloudml.exceptions import NotFound
from jupyter_cloudml.magics import CloudMLMagics, JobFailed
from jupyter_cloudml.models import JobStatus


def magics_of(shell: InteractiveShell) -> CloudMLMagics:
    return shell.magics_manager.registry["CloudMLMagics"]  # type: ignore[no-any-return]


def run(shell: InteractiveShell, source: str):
    return shell.run_cell(textwrap.dedent(source).lstrip("\n"))


def submitted(shell: InteractiveShell) -> int:
    return magics_of(shell).client.list().total


def test_loading_is_cheap_and_client_lazy() -> None:
    magics = CloudMLMagics(shell=InteractiveShell.instance())
    assert magics._client is None
    assert isinstance(magics.client, Client)


def test_dry_run_shows_the_package(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell_magic("cloudml_train", "--dry-run --workers 2 -- --epochs 3", "print(1)\n")
    out = capsys.readouterr().out
    assert "Replicas:  worker-0, worker-1" in out and "--epochs 3" in out
    assert "_cloudml_cell.py" in out and "nothing submitted" in out
    assert submitted(shell) == 0


def test_bad_flag_is_a_usage_error_and_submits_nothing(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError, match=r"unknown option '--wokers' \(did you mean --workers\?\)"):
        shell.run_cell_magic("cloudml_train", "--wokers 2", "print(1)")
    result = run(shell, "%%cloudml_train --workers 0\nprint(1)\n")
    assert isinstance(result.error_in_exec, UsageError)
    err = capsys.readouterr().err
    assert "UsageError: --workers must be at least 1, got 0" in err
    result = run(shell, "%%cloudml_train\nprint(1\n")
    assert isinstance(result.error_in_exec, UsageError)
    assert "line 2: 'print(1'" in capsys.readouterr().err  # the editor's line: after the magic
    with pytest.raises(UsageError, match="cannot split"):
        shell.run_line_magic("cloudml", "logs 'unclosed")
    assert submitted(shell) == 0


def test_help(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell_magic("cloudml_train", "--help", "pass")
    assert capsys.readouterr().out.startswith("usage: %%cloudml_train [options]")
    shell.run_line_magic("cloudml_train", "-h")
    assert capsys.readouterr().out.startswith("usage: %cloudml_train [options]")
    shell.run_line_magic("cloudml", "")
    assert "usage: %cloudml COMMAND" in capsys.readouterr().out
    shell.run_line_magic("cloudml", "jobs logs -h")
    assert capsys.readouterr().out.startswith("usage: %cloudml jobs logs")


def test_the_help_of_an_empty_training_cell(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    """IPython refuses a cell magic with an empty body; `%%cloudml_train --help` shows help."""
    result = shell.run_cell("%%cloudml_train --help\n")
    assert result.error_before_exec is None and result.error_in_exec is None
    assert capsys.readouterr().out.startswith("usage: %cloudml_train [options]")
    result = shell.run_cell("%%cloudml_train --name x\n")  # no help asked: IPython's own answer
    assert "the cell body is empty" in str(result.error_in_exec)


def test_the_terminal_groups_run_in_a_notebook_too(
    shell: InteractiveShell,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    shell.run_line_magic("cloudml", "local service status")
    assert "not installed" in capsys.readouterr().out
    shell.run_line_magic("cloudml", "hub rbac")
    assert "kind: ClusterRole" in capsys.readouterr().out


def test_domain_errors_are_one_line(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(shell, "%cloudml describe nope-123456")
    assert isinstance(result.error_in_exec, NotFound)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    assert "NotFound: no job with id or name 'nope-123456' (see `%cloudml jobs`)" in text


def test_train_wait_return_loads_variables(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.user_ns["a"] = 5
    result = run(
        shell,
        """
        %%cloudml_train --wait --export a --return y,z
        y = a * 6
        z = [a]
        print("computed", y)
        """,
    )
    assert result.success, result.error_in_exec
    assert (shell.user_ns["y"], shell.user_ns["z"]) == (30, [5])
    out = capsys.readouterr().out
    assert "interrupt the kernel to cancel it" in out
    assert "SUCCEEDED" in out and "loaded y, z from job cell-" in out


def test_train_then_wait_fetch_and_inspect(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(shell, "%%cloudml_train --return w --name later\nw = 'done'\nprint('hello')\n")
    assert result.success, result.error_in_exec
    out = capsys.readouterr().out
    assert "run %cloudml fetch later-" in out and "when it succeeds" in out
    job_id = magics_of(shell).client.list().jobs[0].id
    shell.run_line_magic("cloudml", f"wait {job_id}")
    assert f"job {job_id} SUCCEEDED" in capsys.readouterr().out
    shell.run_line_magic("cloudml", f"fetch {job_id}")
    assert shell.user_ns["w"] == "done"
    assert capsys.readouterr().out == f"loaded w from job {job_id}\n"
    shell.run_line_magic("cloudml", f"logs {job_id}")
    assert capsys.readouterr().out == "[worker-0] hello\n"
    shell.run_line_magic("cloudml", "jobs")
    assert "1 of 1 jobs" in capsys.readouterr().out
    shell.run_line_magic("cloudml", f"jobs describe {job_id}")
    assert "worker-0  SUCCEEDED  0" in capsys.readouterr().out


def test_failed_job_fails_the_cell(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(shell, "%%cloudml_train --wait\nraise SystemExit(3)\n")
    assert isinstance(result.error_in_exec, JobFailed)
    captured = capsys.readouterr()
    assert "JobFailed: job cell-" in captured.out + captured.err
    assert "Traceback" not in captured.out + captured.err


def test_interrupt_while_waiting_cancels_the_job(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = magics_of(shell).client
    real_wait = client.wait

    def interrupted(job_id: str, timeout: float | None = None) -> None:
        # Interrupt once the cell runs (its first line is out), as a user would.
        deadline = time.monotonic() + 30
        while not any(client.logs(job_id)) and time.monotonic() < deadline:
            real_wait(job_id, timeout=0.1)
        raise KeyboardInterrupt

    monkeypatch.setattr(client, "wait", interrupted)
    result = run(
        shell,
        "%%cloudml_train --wait\nimport time\nprint('sleeping', flush=True)\ntime.sleep(60)\n",
    )
    assert result.success
    monkeypatch.undo()
    job = client.list().jobs[0]
    assert f"interrupted: cancelled job {job.id}" in capsys.readouterr().out
    final = client.wait(job.id, timeout=30)
    assert final.status is JobStatus.CANCELLED, (final.reason, client.events(job.id))


def test_line_magic_train_script(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "job.py").write_text("import sys\nprint(sys.argv[1:])\n")
    shell.run_line_magic("cloudml", "train job.py --wait -- --x 1")
    out = capsys.readouterr().out
    assert "job job-" in out and "SUCCEEDED" in out
    job_id = magics_of(shell).client.list().jobs[0].id
    shell.run_line_magic("cloudml", f"logs {job_id}")
    assert capsys.readouterr().out == "[worker-0] ['--x', '1']\n"


def test_studies_and_jobs_by_name_in_a_notebook(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    source = """
    %%cloudml_train --name gbr-small --param x=uniform(0,1) --metric loss --trials 2 --wait
    import jupyter_cloudml
    jupyter_cloudml.report(step=1, loss=jupyter_cloudml.params()["x"])
    """
    result = run(shell, source)
    assert result.success, result.error_in_exec
    client = magics_of(shell).client
    study_id = client.list_studies()[0].id
    capsys.readouterr()
    shell.run_line_magic("cloudml", "studies best gbr-small")
    assert f" of study {study_id}: loss " in capsys.readouterr().out
    boards_before = len(client.tensorboards())
    result = run(shell, "%cloudml tensorboard gbr-small")
    assert result.success, result.error_in_exec
    (board,) = client.tensorboards()[boards_before:]
    client.stop_tensorboard(board.id)
    shell.run_line_magic("cloudml", "jobs --limit 1")
    assert capsys.readouterr().out.splitlines()[-1] == (
        "1 of 3 jobs (the rest: `%cloudml jobs --limit 1 --offset 1`, or all: `--limit 3`)"
    )
    shell.run_line_magic("cloudml", "wait gbr-small-t0")  # a trial, by its name
    assert "SUCCEEDED" in capsys.readouterr().out
    result = run(shell, "%cloudml logs gbr-small")
    assert isinstance(result.error_in_exec, NotFound)
    captured = capsys.readouterr()
    assert (
        "NotFound: 'gbr-small' is a study, not a job (see `%cloudml studies describe "
        "gbr-small`; jobs: `%cloudml jobs`)"
    ) in captured.out + captured.err


def test_tracebacks_count_lines_as_the_editor_and_a_missing_return_is_named(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(shell, "%%cloudml_train --wait --name broken\nx = 1\n\nraise ValueError('on 4')\n")
    assert isinstance(result.error_in_exec, JobFailed)
    client = magics_of(shell).client
    logs = "\n".join(line.text for line in client.logs(client.find("broken").id))
    assert '_cloudml_cell.py", line 4, in <module>' in logs  # the editor's line 4
    assert "raise ValueError('on 4')" in logs
    capsys.readouterr()
    shell.user_ns.pop("z", None)  # the shell is shared: another test's z
    result = run(shell, "%%cloudml_train --wait --return y,z\ny = 42\n")
    assert result.success, result.error_in_exec
    assert shell.user_ns["y"] == 42 and "z" not in shell.user_ns
    out = capsys.readouterr().out
    assert "SUCCEEDED" in out
    assert "loaded y from job cell-" in out and "; the cell defined no z (--return)" in out
    job_id = client.find("cell").id
    assert "the cell defined no variable named 'z'" in "\n".join(
        line.text for line in client.logs(job_id)
    )
    shell.run_line_magic("cloudml", "fetch cell")  # later, by name: the same report
    assert (
        capsys.readouterr().out == f"loaded y from job {job_id}; the cell defined no z (--return)\n"
    )


def test_quota_shows_slots_in_use_and_queued_work(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], isolated_home: Path, make_spec
) -> None:
    from jupyter_cloudml.backends.local import LocalBackend

    client = Client(backend=LocalBackend(home=str(isolated_home), cpu_slots=1.0, gpu_ids=[]))
    magics_of(shell).client = client
    holds = client.submit(make_spec("import time\ntime.sleep(60)", name="holds"))
    waits = client.submit(make_spec("pass", name="waits"))
    deadline = time.monotonic() + 30
    while client.get(holds.id).status is not JobStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.1)
    capsys.readouterr()
    shell.run_line_magic("cloudml", "quota")
    out = capsys.readouterr().out
    assert out.splitlines()[:4] == [
        f"local scheduler of {isolated_home}:",
        "RESOURCE   USED  HARD",
        "cpu slots  1     1",
        "gpus       0     0",
    ]
    assert "jobs: 1 running, 1 queued" in out
    assert f"queued: {waits.id} (waiting for 1 CPU slot(s): 0 of 1 free)" in out
    client.cancel(holds.id)
    client.wait(waits.id, timeout=60)
