"""`cloudml` through `main([...])`, the renderers it shares with the magics, and real jobs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_cloudml.backends.base import Backend
from jupyter_cloudml.cli import main
from jupyter_cloudml.client import Client
from jupyter_cloudml.exceptions import NotFound
from jupyter_cloudml.models import (
    Capabilities,
    CodePackage,
    Event,
    JobInfo,
    JobPage,
    JobQuery,
    JobStatus,
    LogLine,
    MetricsUpdate,
    ReplicaInfo,
    ReplicaStatus,
    TrainSpec,
)
from jupyter_cloudml.views.jobs import format_job, format_job_table, format_log_line, job_dict
from jupyter_cloudml.views.text import format_duration

NOW = 1_700_000_000.0


def job(id: str = "mnist-3f9a1c", status: JobStatus = JobStatus.SUCCEEDED, **kw) -> JobInfo:
    fields = {
        "name": "mnist",
        "created": NOW - 125,
        "started": NOW - 120,
        "finished": NOW - 55,
        "replicas": (
            ReplicaInfo("chief-0", ReplicaStatus.SUCCEEDED, 0),
            ReplicaInfo("worker-0", ReplicaStatus.SUCCEEDED, 0, gpus=(0, 1)),
            ReplicaInfo("worker-1", ReplicaStatus.FAILED, 137),
        ),
        **kw,
    }
    return JobInfo(id=id, status=status, **fields)


class MemoryBackend(Backend):
    """Jobs in a dict: just enough of a backend for the CLI's glue."""

    def __init__(self, *jobs: JobInfo) -> None:
        super().__init__()
        self.jobs = {j.id: j for j in jobs}
        self.submitted: list[TrainSpec] = []

    def _job(self, job_id: str) -> JobInfo:
        if job_id not in self.jobs:
            raise NotFound(f"no job {job_id!r}")
        return self.jobs[job_id]

    def submit(self, spec: TrainSpec) -> JobInfo:
        self.submitted.append(spec)
        info = JobInfo(id=f"{spec.name}-000001", name=spec.name, status=JobStatus.SUCCEEDED)
        self.jobs[info.id] = info
        return info

    def get(self, job_id: str) -> JobInfo:
        return self._job(job_id)

    def list(self, query: JobQuery | None = None) -> JobPage:
        jobs = tuple(self.jobs.values())
        return JobPage(jobs[: (query or JobQuery()).limit], len(jobs))

    def cancel(self, job_id: str) -> JobInfo:
        return self._job(job_id)

    def delete(self, job_id: str) -> None:
        del self.jobs[self._job(job_id).id]

    def logs(
        self, job_id: str, replica=None, follow=False, since=None, tail=None, stop=None
    ) -> Iterator[LogLine]:
        self._job(job_id)
        lines = [LogLine(NOW, "worker-0", "epoch 1"), LogLine(NOW + 1, "worker-1", "epoch 1")]
        return iter([line for line in lines if replica in (None, line.replica)][-(tail or 99) :])

    def events(self, job_id: str) -> list[Event]:
        return [Event(NOW - 125, "Queued", "3 replica(s)")]

    def read_code(self, job_id: str) -> bytes:
        raise NotFound(job_id)

    def read_output(self, job_id: str, name: str) -> bytes:
        raise NotFound(name)

    def metrics(self, job_id: str, cursor: str | None = None) -> MetricsUpdate:
        self._job(job_id)
        return MetricsUpdate({}, "")

    def capabilities(self) -> Capabilities:
        return Capabilities(backend="memory")


def run(capsys: pytest.CaptureFixture[str], *argv: str, backend: Backend | None = None):
    code = main(list(argv), client=Client(backend=backend or MemoryBackend(job())))
    out, err = capsys.readouterr()
    return code, out, err


# --- render -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0s"), (42.9, "42s"), (65, "1m 05s"), (7500, "2h 05m"), (273600, "3d 04h")],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_log_line() -> None:
    assert format_log_line(LogLine(NOW, "worker-1", "loss 0.3")) == "[worker-1] loss 0.3"


def test_job_table_is_aligned_with_a_footer() -> None:
    page = JobPage((job(), job("a-1", JobStatus.QUEUED, started=None, replicas=())), total=7)
    lines = format_job_table(page, now=NOW).splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "AGE", "ELAPSED", "REPLICAS"]
    row = ["mnist-3f9a1c", "mnist", "SUCCEEDED", "2m", "05s", "1m", "05s", "chief:1", "worker:2"]
    assert lines[1].split() == row
    assert lines[2].split()[:3] == ["a-1", "mnist", "QUEUED"] and lines[2].endswith("-")
    assert lines[0].index("STATUS") == lines[1].index("SUCCEEDED") == lines[2].index("QUEUED")
    assert lines[-1] == "2 of 7 jobs (the rest: `cloudml jobs --offset 2`, or all: `--limit 7`)"


def test_tables_fit_100_columns_and_long_reasons_end_in_dots() -> None:
    reason = "worker-0 exited with 1: " + "Traceback line " * 20
    long_name = "a-long-experiment-name-for-the-resnet-50"  # 40: the longest
    text = format_job_table(JobPage((job(reason=reason),), total=23), now=NOW, offset=22)
    lines = text.splitlines()
    assert max(len(line) for line in lines) == 100, text
    assert lines[1] == (
        "mnist-3f9a1c  mnist  SUCCEEDED (worker-0 exited with 1: Traceb...  2m 05s  1m 05s   "
        "chief:1 worker:2"
    )
    assert lines[-1] == "1 of 23 jobs"  # the last page
    longest = job(f"{long_name}-3f9a1c", JobStatus.FAILED, name=long_name, reason=reason)
    text = format_job_table(JobPage((job(), longest), total=23), now=NOW)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100, text
    assert lines[2].split()[0] == f"{long_name}-3f9a1c"  # ids are never cut
    assert lines[2].split()[2].startswith("FAILED")
    assert lines[-1] == "2 of 23 jobs (the rest: `cloudml jobs --offset 2`, or all: `--limit 23`)"
    assert reason in format_job(job(reason=reason), [])  # describe has the full text


def test_describe_shows_replicas_with_exit_codes_and_events() -> None:
    text = format_job(job(reason="worker-1 was killed"), [Event(NOW, "Killed", "oom", "Warning")])
    assert "Status:   SUCCEEDED (worker-1 was killed)" in text
    assert "Elapsed:  1m 05s" in text
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith("  ")}
    assert rows["worker-1"] == ["worker-1", "FAILED", "137", "-"]
    assert rows["worker-0"] == ["worker-0", "SUCCEEDED", "0", "0,1"]
    assert "Warning  Killed  oom" in text


def test_json_leaves_the_archive_out() -> None:
    spec = TrainSpec(name="t", package=CodePackage(b"x" * 10, "m", ("m.py",)), returns=("y",))
    data = job_dict(job(spec=spec))
    assert data["spec"]["package"] == {
        "module": "m",
        "files": ["m.py"],
        "requirements": [],
        "size": 10,
    }
    assert data["elapsed"] == 65 and data["replicas"][2]["exit_code"] == 137
    json.dumps(data)


# --- main() with a backend in memory -------------------------------------------------------


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "commands:" in out
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and "--package-path DIR" in out


def test_real_console_script_help() -> None:
    script = Path(sys.executable).with_name("cloudml")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "jupyter_cloudml.cli"]
    done = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "usage: cloudml COMMAND" in done.stdout
    done = subprocess.run(
        [*argv, "train", "--wokers", "2"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr == "cloudml: error: unknown option '--wokers' (did you mean --workers?)\n"


def test_usage_errors_exit_2_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "jobs", "describe")
    assert code == 2 and out == "" and err.startswith("cloudml: error: missing JOB")
    code, _, err = run(capsys, "fetch", "j1")
    assert code == 2 and "'%cloudml fetch j1'" in err and "notebook" in err
    code, _, err = run(capsys, "train", "x.py", "--return", "y")
    assert code == 2 and "--return" in err


def test_not_found_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "describe", "nope")
    expected = "cloudml: error: no job with id or name 'nope' (see `cloudml jobs`)\n"
    assert (code, out, err) == (1, "", expected)


def test_list_describe_logs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "jobs")
    assert code == 0 and out.splitlines()[-1] == "1 of 1 jobs"
    code, out, _ = run(capsys, "list", "--output", "json")
    assert json.loads(out)["total"] == 1
    code, out, _ = run(capsys, "jobs", "describe", "mnist-3f9a1c")
    assert "ID:       mnist-3f9a1c" in out and "Queued" in out
    code, out, _ = run(capsys, "describe", "mnist-3f9a1c", "-o", "json")
    assert json.loads(out)["events"][0]["reason"] == "Queued"
    code, out, _ = run(capsys, "logs", "mnist-3f9a1c")
    assert out == "[worker-0] epoch 1\n[worker-1] epoch 1\n"
    code, out, _ = run(capsys, "logs", "mnist-3f9a1c", "--replica", "worker-1", "-o", "json")
    assert json.loads(out)["replica"] == "worker-1"


def test_wait_cancel_delete(capsys: pytest.CaptureFixture[str]) -> None:
    backend = MemoryBackend(
        job(), job("bad-1", JobStatus.FAILED, reason="oom"), job("r-1", JobStatus.RUNNING)
    )
    assert run(capsys, "wait", "mnist-3f9a1c", backend=backend)[:2] == (
        0,
        "job mnist-3f9a1c SUCCEEDED after 1m 05s\n",
    )
    code, out, _ = run(capsys, "wait", "bad-1", backend=backend)
    assert code == 1 and "FAILED (oom)" in out
    code, out, _ = run(capsys, "wait", "r-1", "--timeout", "0", backend=backend)
    assert code == 1 and "stopped waiting" in out
    code, out, _ = run(capsys, "cancel", "r-1", "bad-1", backend=backend)
    assert out == "cancelling job r-1 (RUNNING)\njob bad-1 already FAILED\n"
    code, out, _ = run(capsys, "delete", "bad-1", backend=backend)
    assert (code, out) == (0, "deleted job bad-1\n") and "bad-1" not in backend.jobs


def test_train_prints_the_id_and_a_follow_up(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("print('hi')\n")
    backend = MemoryBackend()
    code, out, _ = run(
        capsys, "train", "train.py", "--workers", "2", "--", "--lr", "1", backend=backend
    )
    assert code == 0
    follow = "follow its logs with:\n  cloudml jobs logs train-000001 -f\n"
    assert out == "submitted job train-000001\n" + follow
    (spec,) = backend.submitted
    assert (spec.name, spec.replicas.workers, spec.args) == ("train", 2, ("--lr", "1"))


def test_dry_run_submits_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("print('hi')\n")
    backend = MemoryBackend()
    code, out, _ = run(capsys, "train", "train.py", "--dry-run", backend=backend)
    assert code == 0 and "_cloudml_cell.py" in out and "nothing submitted" in out
    code, out, _ = run(
        capsys, "train", "train.py", "--dry-run", "-o", "json", "--env", "A=1", backend=backend
    )
    data = json.loads(out)
    assert data["env"] == {"A": "1"} and data["package"]["size"] > 0
    assert backend.submitted == []


# --- end to end on the local backend ----------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_local_train_wait_succeeds_and_crash_fails(
    capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    (workdir / "ok.py").write_text("import sys\nprint('args', sys.argv[1:])\n")
    (workdir / "crash.py").write_text("raise RuntimeError('boom')\n")
    code, out, _ = cli(capsys, "train", "ok.py", "--wait", "--", "--lr", "1")
    assert code == 0, out
    assert "[worker-0] args ['--lr', '1']" in out and "SUCCEEDED" in out.splitlines()[-1]
    code, out, _ = cli(capsys, "train", "crash.py", "--wait")
    assert code == 1 and "RuntimeError: boom" in out and "FAILED" in out.splitlines()[-1]
    code, out, _ = cli(capsys, "jobs", "list", "--output", "json")
    data = json.loads(out)
    assert data["total"] == 2
    assert {j["name"]: j["status"] for j in data["jobs"]} == {"ok": "SUCCEEDED", "crash": "FAILED"}


def test_local_wait_and_logs_of_a_submitted_job(
    capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    (workdir / "two.py").write_text("import os\nprint('rank', os.environ.get('RANK'))\n")
    code, out, _ = cli(capsys, "train", "two.py", "--framework", "pytorch", "--workers", "2")
    assert code == 0
    job_id = out.split()[2]
    code, out, _ = cli(capsys, "jobs", "wait", job_id, "--timeout", "2m")
    assert code == 0 and f"job {job_id} SUCCEEDED" in out
    code, out, _ = cli(capsys, "logs", job_id)
    assert sorted(out.splitlines()) == ["[worker-0] rank 0", "[worker-1] rank 1"]
    code, out, _ = cli(capsys, "describe", job_id)
    assert "worker-1  SUCCEEDED  0" in out
    start = time.monotonic()
    assert cli(capsys, "delete", job_id)[0] == 0
    assert cli(capsys, "describe", job_id)[0] == 1
    assert time.monotonic() - start < 30


def test_jobs_and_studies_go_by_id_or_name(
    capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    (workdir / "say.py").write_text(
        "import jupyter_cloudml, sys\nprint('hello', sys.argv[1:])\n"
        "jupyter_cloudml.report(step=1, loss=float(sys.argv[-1].split('=')[-1]))\n"
    )
    for run_number in ("1", "2"):
        code, out, _ = cli(capsys, "train", "say.py", "--name", "greet", "--wait", "--", run_number)
        assert code == 0, out
    newest = Client().list(JobQuery(name="greet")).jobs[0].id
    code, out, _ = cli(capsys, "jobs", "logs", "greet")
    assert (code, out) == (0, "[worker-0] hello ['2']\n")  # the newest job of that name
    expected = {
        "describe": f"ID:        {newest}",
        "wait": f"job {newest} SUCCEEDED",
        "metrics": "loss",
    }
    for verb, text in expected.items():
        code, out, _ = cli(capsys, verb, "greet")
        assert code == 0 and text in out, (verb, out)
    code, out, _ = cli(capsys, "jobs", "--name", "greet", "--limit", "1")
    assert out.splitlines()[-1] == (
        "1 of 2 jobs (the rest: `cloudml jobs --name greet --limit 1 --offset 1`, or all: "
        "`--limit 2`)"
    )
    code, out, _ = cli(capsys, "cancel", "greet")
    assert (code, out) == (0, f"job {newest} already SUCCEEDED\n")
    code, out, err = cli(
        capsys, "train", "say.py", "--name", "tune-say", "--param", "x=uniform(0,1)",
        "--metric", "loss", "--goal", "minimize", "--trials", "2", "--wait",
    )  # fmt: skip
    assert code == 0, out + err
    code, out, _ = cli(capsys, "studies", "best", "tune-say")
    assert code == 0 and "best trial" in out
    code, out, _ = cli(capsys, "studies", "describe", "tune-say")
    assert code == 0 and "tune-say" in out
    # Unknown and mismatched names say what they matched and what lists them.
    code, _, err = cli(capsys, "logs", "nobody")
    assert (code, err) == (
        1,
        "cloudml: error: no job with id or name 'nobody' (see `cloudml jobs`)\n",
    )
    code, _, err = cli(capsys, "logs", "tune-say")
    assert code == 1 and "'tune-say' is a study, not a job" in err
    code, _, err = cli(capsys, "studies", "best", "greet")
    assert code == 1 and "'greet' is a job, not a study (studies: `cloudml studies`)" in err
    code, out, _ = cli(capsys, "delete", "greet")
    assert (code, out) == (0, f"deleted job {newest}\n")
    code, out, _ = cli(capsys, "logs", "greet")
    assert (code, out) == (0, "[worker-0] hello ['1']\n")  # the one left
