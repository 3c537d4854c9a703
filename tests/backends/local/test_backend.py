"""LocalBackend end to end: real supervisors, real replica processes, real SQLite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from jupyter_cloudml.backends.local.store import JobStore
from jupyter_cloudml.client import Client
from jupyter_cloudml.exceptions import Conflict, InvalidSpec, NotFound, QuotaExceeded
from jupyter_cloudml.models import (
    Framework,
    JobQuery,
    JobStatus,
    Replicas,
    ReplicaStatus,
    Resources,
)
from jupyter_cloudml.views.jobs import format_job, job_dict
from jupyter_cloudml.widgets.job import render_replicas


def wait(backend, job_id, timeout=60):
    return Client(backend=backend).wait(job_id, timeout=timeout, poll=0.05)


def log_text(backend, job_id, replica=None):
    return "\n".join(f"[{line.replica}] {line.text}" for line in backend.logs(job_id, replica))


def test_single_job_runs_and_logs(backend, make_spec):
    job = backend.submit(make_spec("print('hello from the cell')\nprint('second line')"))
    assert job.status in (JobStatus.QUEUED, JobStatus.STARTING, JobStatus.RUNNING)
    done = wait(backend, job.id)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    assert [r.status for r in done.replicas] == [ReplicaStatus.SUCCEEDED]
    assert done.replicas[0].exit_code == 0
    lines = list(backend.logs(job.id))
    assert [line.text for line in lines] == ["hello from the cell", "second line"]
    assert {line.replica for line in lines} == {"worker-0"}
    reasons = [e.reason for e in backend.events(job.id)]
    assert reasons[:3] == ["Queued", "Scheduled", "Started"] and reasons[-1] == "Succeeded"
    assert done.started and done.finished and done.finished >= done.started


def test_crashing_trainer_fails_with_reason_and_traceback(backend, make_spec):
    job = backend.submit(make_spec("x = 1\nraise ValueError('bad data')"))
    done = wait(backend, job.id)
    assert done.status is JobStatus.FAILED
    assert done.reason == "replica worker-0 exited with code 1"
    text = log_text(backend, job.id)
    assert "ValueError: bad data" in text and "line 2" in text


def test_retries_with_backoff_then_succeeds(backend, make_spec):
    code = """
        import os, sys
        print("attempt", os.environ["CLOUDML_ATTEMPT"])
        if os.environ["CLOUDML_ATTEMPT"] == "1":
            sys.exit(3)
    """
    done = wait(backend, backend.submit(make_spec(code, retries=2)).id)
    assert done.status is JobStatus.SUCCEEDED and done.attempt == 2
    events = backend.events(done.id)
    retry = [e for e in events if e.reason == "Retrying"]
    assert len(retry) == 1 and "exited with code 3" in retry[0].message
    assert "----- attempt 2 -----" in log_text(backend, done.id)


def test_retries_exhausted_fails(backend, make_spec):
    done = wait(backend, backend.submit(make_spec("import sys; sys.exit(2)", retries=1)).id)
    assert done.status is JobStatus.FAILED and done.attempt == 2
    assert "exited with code 2" in done.reason


def test_timeout_fails_the_job(backend, make_spec):
    job = backend.submit(
        make_spec(
            "import time\nprint('sleeping', flush=True)\ntime.sleep(60)", timeout=1.0, retries=3
        )
    )
    done = wait(backend, job.id, timeout=30)
    assert done.status is JobStatus.FAILED and done.reason == "timed out after 1s"
    assert done.attempt == 1  # a timeout is not retried


def test_cancel_running_job_stops_its_processes(backend, make_spec):
    job = backend.submit(
        make_spec(
            "import time, os\nprint(os.getpid(), flush=True)\ntime.sleep(120)",
            replicas=Replicas(workers=2),
        )
    )
    deadline = time.monotonic() + 20
    while len(list(backend.logs(job.id))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [int(line.text) for line in backend.logs(job.id)]
    assert len(pids) == 2
    cancelled = backend.cancel(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.reason == "cancelled by the user"
    # One word in every view: CANCELLED, not FAILED -15 (the CLI's table, the REST API's and
    # the widget's data are made from these replicas).
    after = backend.get(job.id)
    assert [r.status for r in after.replicas] == [ReplicaStatus.CANCELLED] * 2
    assert [r["status"] for r in job_dict(after)["replicas"]] == ["CANCELLED"] * 2
    assert "worker-1  CANCELLED" in format_job(after, []) and "FAILED" not in format_job(after, [])
    assert "<td>CANCELLED</td>" in render_replicas(after)
    time.sleep(0.2)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)


def test_cancel_queued_job(backend, make_spec, isolated_home):
    from jupyter_cloudml.backends.local import LocalBackend

    one_slot = LocalBackend(home=str(isolated_home), cpu_slots=1)
    first = one_slot.submit(make_spec("import time; time.sleep(30)"))
    second = one_slot.submit(make_spec("print('never')"))
    assert one_slot.get(second.id).status is JobStatus.QUEUED
    assert one_slot.cancel(second.id).status is JobStatus.CANCELLED
    one_slot.cancel(first.id)


def test_scheduler_queues_by_cpu_slots(isolated_home, make_spec):
    from jupyter_cloudml.backends.local import LocalBackend

    backend = LocalBackend(home=str(isolated_home), cpu_slots=2)
    slow = make_spec("import time; time.sleep(1.5)")
    a = backend.submit(slow)
    b = backend.submit(make_spec("print('b')", resources=Resources(cpu=2)))
    c = backend.submit(make_spec("print('c')"))
    assert backend.get(b.id).status is JobStatus.QUEUED
    # c fits beside a, but b is older and waits for two slots: c must not overtake it.
    assert backend.get(c.id).status is JobStatus.QUEUED
    for job in (a, b, c):
        assert wait(backend, job.id).status is JobStatus.SUCCEEDED
    assert backend.get(b.id).started >= backend.get(a.id).finished - 0.05


def test_gpus_handed_out_through_cuda_visible_devices(isolated_home, make_spec):
    from jupyter_cloudml.backends.local import LocalBackend

    backend = LocalBackend(home=str(isolated_home), gpu_ids=[0, 1, 2])
    code = "import os\nprint(os.environ['CUDA_VISIBLE_DEVICES'])"
    job = backend.submit(make_spec(code, replicas=Replicas(workers=2), resources=Resources(gpus=1)))
    cpu_only = backend.submit(make_spec(code))
    done = wait(backend, job.id)
    assert done.status is JobStatus.SUCCEEDED
    seen = {line.replica: line.text for line in backend.logs(job.id)}
    assert seen["worker-0"] != seen["worker-1"]
    assert {seen["worker-0"], seen["worker-1"]} <= {"0", "1", "2"}
    assert wait(backend, cpu_only.id).status is JobStatus.SUCCEEDED
    assert [line.text for line in backend.logs(cpu_only.id)] == [""]
    with pytest.raises(QuotaExceeded, match="asks for 4 GPU"):
        backend.submit(make_spec(code, replicas=Replicas(workers=2), resources=Resources(gpus=2)))


def test_env_pre_and_post_commands(backend, make_spec, tmp_path):
    marker = tmp_path / "post.txt"
    code = (
        "import os\nprint('token', os.environ['MY_TOKEN'])\nprint(open('pre.txt').read().strip())"
    )
    spec = make_spec(
        code,
        env={"MY_TOKEN": "abc"},
        pre_command="echo prepared > pre.txt",
        post_command=f"echo done $CLOUDML_EXIT_CODE > {marker}",
    )
    done = wait(backend, backend.submit(spec).id)
    assert done.status is JobStatus.SUCCEEDED, log_text(backend, done.id)
    assert [line.text for line in backend.logs(done.id)] == ["token abc", "prepared"]
    assert marker.read_text().strip() == "done 0"


def test_failing_pre_command_fails_the_replica(backend, make_spec):
    done = wait(backend, backend.submit(make_spec("print('no')", pre_command="exit 7")).id)
    assert done.status is JobStatus.FAILED and "exited with code 7" in done.reason
    assert "pre-command failed with exit code 7" in log_text(backend, done.id)


def test_tf_config_for_chief_workers_and_ps(backend, make_spec, tmp_path):
    code = """
        import json, os, time
        cfg = json.loads(os.environ["TF_CONFIG"])
        task = cfg["task"]
        out = os.path.join(os.environ["CLOUDML_JOB_DIR"], f"{task['type']}-{task['index']}.json")
        with open(out + ".tmp", "w") as f:
            json.dump(cfg, f)
        os.rename(out + ".tmp", out)
        if task["type"] == "chief":  # the chief's end decides the job: wait for everyone
            while len([n for n in os.listdir(os.environ["CLOUDML_JOB_DIR"])
                       if n.endswith(".json")]) < 4:
                time.sleep(0.05)
        if task["type"] == "ps":
            time.sleep(120)  # parameter servers never exit by themselves
    """
    job_dir = tmp_path / "tf"
    spec = make_spec(
        code,
        framework=Framework.TENSORFLOW,
        job_dir=str(job_dir),
        replicas=Replicas(chief=1, workers=2, ps=1),
    )
    done = wait(backend, backend.submit(spec).id)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    configs = {p.stem: json.loads(p.read_text()) for p in job_dir.glob("*.json")}
    assert set(configs) == {"chief-0", "worker-0", "worker-1", "ps-0"}
    cluster = configs["chief-0"]["cluster"]
    assert {k: len(v) for k, v in cluster.items()} == {"chief": 1, "worker": 2, "ps": 1}
    addresses = [a for v in cluster.values() for a in v]
    assert len(set(addresses)) == 4
    for name, cfg in configs.items():
        role, index = name.split("-")
        assert cfg["task"] == {"type": role, "index": int(index), "trial": ""}
        assert cfg["cluster"] == cluster and cfg["environment"] == "cloud"
    ps = {r.name: r for r in done.replicas}["ps-0"]
    assert ps.status is ReplicaStatus.STOPPED
    assert "ps-0      STOPPED" in format_job(done, [])
    assert "<td>ps-0</td><td>STOPPED</td>" in render_replicas(done)


def test_each_role_runs_with_its_gpus_interpreter_and_a_google_tf_config(
    isolated_home, make_spec, tmp_path
):
    """A master, 2 workers, a parameter server and an evaluator: GPUs handed out per role, the
    parameter server on an interpreter of its own, TF_CONFIG as Google writes it."""
    from jupyter_cloudml.backends.local import LocalBackend

    other_python = tmp_path / "ps-python"
    other_python.symlink_to(sys.executable)
    backend = LocalBackend(
        home=str(isolated_home),
        gpu_ids=[0, 1, 2],
        cpu_slots=16,
        image_interpreters={"tf-cpu:2.15": str(other_python)},
    )
    code = """
        import json, os, sys, time
        cfg = json.loads(os.environ["TF_CONFIG"])
        seen = {"cfg": cfg, "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
                "python": sys.executable, "job": os.environ["CLOUD_ML_JOB_ID"],
                "trial": os.environ.get("CLOUD_ML_TRIAL_ID")}
        out = os.path.join(os.environ["CLOUDML_JOB_DIR"], os.environ["CLOUDML_REPLICA"] + ".json")
        with open(out + ".tmp", "w") as f:
            json.dump(seen, f)
        os.rename(out + ".tmp", out)
        if cfg["task"]["type"] == "master":
            while len([n for n in os.listdir(os.environ["CLOUDML_JOB_DIR"])
                       if n.endswith(".json")]) < 5:
                time.sleep(0.05)
        else:
            time.sleep(120)  # parameter servers and evaluators are stopped at the end
    """
    job_dir = tmp_path / "tf"
    spec = make_spec(
        code,
        framework=Framework.TENSORFLOW,
        job_dir=str(job_dir),
        replicas=Replicas(chief=1, workers=2, ps=1, evaluators=1),
        resources=Resources(cpu=2, gpus=1),
        role_resources={"ps": Resources(cpu=4), "evaluator": Resources(cpu=1)},
        role_images={"ps": "tf-cpu:2.15"},
        tf_chief_name="master",
    )
    job = backend.submit(spec)
    row = JobStore(isolated_home / "jobs.db").row(job.id)
    assert (row["cpu_demand"], row["gpu_demand"]) == (2 * 3 + 4 + 1, 3)
    done = wait(backend, job.id)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    seen = {p.stem: json.loads(p.read_text()) for p in job_dir.glob("*.json")}
    assert sorted(seen) == ["chief-0", "evaluator-0", "ps-0", "worker-0", "worker-1"]
    gpus = {name: s["gpus"] for name, s in seen.items()}
    assert sorted(gpus[n] for n in ("chief-0", "worker-0", "worker-1")) == ["0", "1", "2"]
    assert gpus["ps-0"] == gpus["evaluator-0"] == ""
    assert seen["ps-0"]["python"] == str(other_python)
    assert seen["worker-0"]["python"] == sys.executable
    cluster = seen["chief-0"]["cfg"]["cluster"]
    assert {k: len(v) for k, v in cluster.items()} == {"master": 1, "worker": 2, "ps": 1}
    tasks = {name: s["cfg"]["task"] for name, s in seen.items()}
    assert tasks["chief-0"] == {"type": "master", "index": 0, "trial": ""}
    assert tasks["evaluator-0"] == {"type": "evaluator", "index": 0, "trial": ""}
    assert all(s["cfg"]["cluster"] == cluster for s in seen.values())
    assert {s["job"] for s in seen.values()} == {job.id}
    assert {s["trial"] for s in seen.values()} == {None}  # not a study's trial
    states = {r.name: r.status for r in done.replicas}
    assert states["ps-0"] is states["evaluator-0"] is ReplicaStatus.STOPPED


def test_tf_worker_failure_fails_job(backend, make_spec):
    code = """
        import json, os, sys
        task = json.loads(os.environ["TF_CONFIG"])["task"]
        sys.exit(5 if task["index"] == 1 else 0)
    """
    spec = make_spec(code, framework=Framework.TENSORFLOW, replicas=Replicas(workers=2))
    done = wait(backend, backend.submit(spec).id)
    assert done.status is JobStatus.FAILED and done.reason == "replica worker-1 exited with code 5"


@pytest.mark.slow
def test_pytorch_ddp_gloo_two_workers(backend, make_spec):
    pytest.importorskip("torch")
    code = """
        import os
        import torch
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method="env://")
        rank, world = dist.get_rank(), dist.get_world_size()
        model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        torch.manual_seed(rank)
        for _ in range(3):
            opt.zero_grad()
            model(torch.randn(8, 4)).pow(2).mean().backward()
            opt.step()
        t = torch.tensor([rank + 1.0])
        dist.all_reduce(t)
        weights = [p.detach().clone() for p in model.parameters()]
        print(f"rank={rank} world={world} local={os.environ['LOCAL_RANK']} sum={t.item()} "
              f"w0={weights[0].sum().item():.6f}")
        dist.barrier()  # no rank tears gloo down while another still talks to it
        dist.destroy_process_group()
    """
    spec = make_spec(code, framework=Framework.PYTORCH, replicas=Replicas(workers=2))
    done = wait(backend, backend.submit(spec).id, timeout=180)
    assert done.status is JobStatus.SUCCEEDED, log_text(backend, done.id)
    lines = {
        line.replica: line.text for line in backend.logs(done.id) if line.text.startswith("rank=")
    }
    assert lines["worker-0"].startswith("rank=0 world=2 local=0 sum=3.0")
    assert lines["worker-1"].startswith("rank=1 world=2 local=1 sum=3.0")
    # DDP keeps replicas in sync: both ranks end with identical weights.
    assert lines["worker-0"].split("w0=")[1] == lines["worker-1"].split("w0=")[1]


def test_killed_supervisor_is_detected_and_replicas_stopped(backend, make_spec):
    job = backend.submit(
        make_spec("import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(120)")
    )
    deadline = time.monotonic() + 20
    while not list(backend.logs(job.id)) and time.monotonic() < deadline:
        time.sleep(0.05)
    replica_pid = int(next(iter(backend.logs(job.id))).text)
    pid = backend.store.row(job.id)["supervisor_pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while backend.get(job.id).status is JobStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
    info = backend.get(job.id)
    assert info.status is JobStatus.FAILED
    assert "supervisor process died unexpectedly" in info.reason
    assert any(e.reason == "SupervisorLost" for e in backend.events(job.id))
    time.sleep(0.3)
    assert not psutil.pid_exists(replica_pid) or psutil.Process(replica_pid).status() == "zombie"


def test_returns_come_back_through_the_client(backend, make_spec):
    spec = make_spec(
        "import math, time\nresult = {'pi': round(math.pi, 2)}\nother = 7\ntime.sleep(1)",
        returns=("result", "other"),
    )
    client = Client(backend=backend)
    job = backend.submit(spec)
    with pytest.raises(Conflict, match="once it SUCCEEDED"):
        client.fetch(job.id)
    assert client.wait(job.id).status is JobStatus.SUCCEEDED
    assert client.fetch(job.id) == {"result": {"pi": 3.14}, "other": 7}
    with pytest.raises(InvalidSpec, match="returns no variables"):
        client.fetch(wait(backend, backend.submit(make_spec("pass")).id).id)


def test_unknown_and_path_like_ids_are_not_found(backend):
    for job_id in ("nope-123456", "../../etc/passwd", "", "A" * 200):
        with pytest.raises(NotFound):
            backend.get(job_id)
    with pytest.raises(NotFound):
        list(backend.logs("nope"))


def test_delete_needs_a_finished_job(backend, make_spec, isolated_home):
    job = backend.submit(make_spec("import time; time.sleep(30)"))
    with pytest.raises(Conflict, match="cancel it before deleting"):
        backend.delete(job.id)
    backend.cancel(job.id)
    backend.delete(job.id)
    with pytest.raises(NotFound):
        backend.get(job.id)
    assert not (isolated_home / "jobs" / job.id).exists()


def test_unmapped_image_and_bad_python_are_clear_errors(backend, make_spec):
    with pytest.raises(InvalidSpec, match="image_interpreters"):
        backend.submit(make_spec("pass", image="pytorch/pytorch:2.3"))
    with pytest.raises(InvalidSpec, match="not an executable"):
        backend.submit(make_spec("pass", python="/no/such/python"))
    with pytest.raises(InvalidSpec, match="--job-dir"):
        backend.submit(make_spec("pass", job_dir="nosuchproto://bucket/x"))
    assert backend.list().total == 0  # nothing half-submitted


def test_mapped_image_uses_its_interpreter(isolated_home, make_spec):
    from jupyter_cloudml.backends.local import LocalBackend

    backend = LocalBackend(
        home=str(isolated_home), image_interpreters={"trainer:latest": sys.executable}
    )
    job = backend.submit(make_spec("import sys; print(sys.executable)", image="trainer:latest"))
    assert wait(backend, job.id).status is JobStatus.SUCCEEDED
    assert [line.text for line in backend.logs(job.id)] == [sys.executable]


def test_job_dir_default_and_given(backend, make_spec, tmp_path):
    code = "import os\nprint(os.environ['CLOUDML_JOB_DIR'])"
    default = wait(backend, backend.submit(make_spec(code)).id)
    assert next(iter(backend.logs(default.id))).text.endswith(f"{default.id}/job_dir")
    given = tmp_path / "out" / "run1"
    job = wait(backend, backend.submit(make_spec(code, job_dir=f"file://{given}")).id)
    assert next(iter(backend.logs(job.id))).text == str(given) and given.is_dir()


def test_list_filters_and_pages(backend, make_spec):
    ids = [
        backend.submit(make_spec("pass", name=f"job{i % 2}", labels={"team": str(i % 3)})).id
        for i in range(5)
    ]
    for job_id in ids:
        wait(backend, job_id)
    page = backend.list(JobQuery(limit=2))
    assert page.total == 5 and [j.id for j in page.jobs] == ids[::-1][:2]
    assert backend.list(JobQuery(limit=2, offset=4)).jobs[0].id == ids[0]
    assert backend.list(JobQuery(name="job1")).total == 2
    assert backend.list(JobQuery(labels={"team": "0"})).total == 2
    assert backend.list(JobQuery(status=(JobStatus.FAILED,))).total == 0
    assert backend.list(JobQuery(without_labels=("team",))).total == 0
    backend.delete(ids[0])
    assert backend.list(JobQuery(labels={"team": "0"})).total == 1


def test_a_store_from_before_the_label_index_is_migrated(backend, make_spec, isolated_home):
    import sqlite3

    from jupyter_cloudml.backends.local import LocalBackend

    job = backend.submit(make_spec("pass", labels={"team": "cv"}))
    wait(backend, job.id)
    with sqlite3.connect(backend.settings.db_path) as db:  # as version 0 left it
        db.execute("DROP TABLE labels")
        db.execute("PRAGMA user_version = 0")
    reopened = LocalBackend(home=str(isolated_home))
    assert [j.id for j in reopened.list(JobQuery(labels={"team": "cv"})).jobs] == [job.id]
    assert reopened.list(JobQuery(without_labels=("team",))).total == 0


def test_logs_follow_tail_and_since(backend, make_spec):
    code = "import time\nfor i in range(5):\n    print('line', i, flush=True)\n    time.sleep(0.1)"
    job = backend.submit(make_spec(code))
    followed = [line.text for line in backend.logs(job.id, follow=True)]
    assert followed == [f"line {i}" for i in range(5)]
    assert [line.text for line in backend.logs(job.id, tail=2)] == ["line 3", "line 4"]
    third = list(backend.logs(job.id))[2]
    assert [line.text for line in backend.logs(job.id, since=third.time)] == ["line 3", "line 4"]


def test_partial_lines_and_carriage_returns(backend, make_spec):
    code = """
        import sys, time
        sys.stdout.write('progress 10%\\rprogress 100%\\n')
        sys.stdout.write('prompt without newline')
        sys.stdout.flush()
        time.sleep(0.8)
    """
    done = wait(backend, backend.submit(make_spec(code)).id)
    assert [line.text for line in backend.logs(done.id)] == [
        "progress 100%",
        "prompt without newline",
    ]


SUBMITTER = """
import sys
from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.models import TrainSpec
from jupyter_cloudml.packaging import package_cell
backend = LocalBackend(home=sys.argv[1], cpu_slots=64)
package = package_cell("pass", source_dir=sys.argv[1])
for i in range(int(sys.argv[2])):
    print(backend.submit(TrainSpec(name="race", package=package)).id, flush=True)
"""


def test_concurrent_submitters_lose_and_duplicate_nothing(isolated_home):
    isolated_home.mkdir(parents=True, exist_ok=True)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SUBMITTER, str(isolated_home), "6"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    ids = [line for p in procs for line in p.communicate(timeout=120)[0].split()]
    assert all(p.returncode == 0 for p in procs)
    from jupyter_cloudml.backends.local import LocalBackend

    backend = LocalBackend(home=str(isolated_home))
    page = backend.list(JobQuery(limit=1000))
    assert len(ids) == 24 == len(set(ids)) == page.total
    assert {j.id for j in page.jobs} == set(ids)
    for job_id in ids:
        assert wait(backend, job_id).status is JobStatus.SUCCEEDED


def test_jobs_survive_the_submitting_process(isolated_home, tmp_path):
    """A job submitted by a process that then exits keeps running and is seen by a new one."""
    script = SUBMITTER.replace('"pass"', '"import time; time.sleep(2); print(42)"')
    out = subprocess.run(
        [sys.executable, "-c", script, str(isolated_home), "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    job_id = out.stdout.strip()
    from jupyter_cloudml.backends.local import LocalBackend

    fresh = LocalBackend(home=str(isolated_home))
    assert fresh.get(job_id).status in (JobStatus.STARTING, JobStatus.RUNNING)
    done = wait(fresh, job_id)
    assert done.status is JobStatus.SUCCEEDED
    assert [line.text for line in fresh.logs(job_id)] == ["42"]


def test_store_is_wal_mode(backend):
    mode = backend.store._conn().execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert Path(backend.settings.db_path).exists()


def test_cancel_right_after_submit_while_polled_is_cancelled(backend, make_spec):
    """SIGTERM may reach the supervisor before its handler exists; the reaper must honour the
    cancel request instead of reporting a lost supervisor (a widget polls get() meanwhile)."""
    import threading

    spec = make_spec("import time; time.sleep(30)")
    for _ in range(3):
        job = backend.submit(spec)
        stop = threading.Event()

        def poll(job_id=job.id, stop=stop):
            while not stop.is_set():
                backend.get(job_id)

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            done = backend.cancel(job.id)
        finally:
            stop.set()
            poller.join()
        assert (done.status, done.reason) == (JobStatus.CANCELLED, "cancelled by the user")


@pytest.mark.slow
def test_requirements_installed_into_a_cached_target(backend, tmp_path):
    from jupyter_cloudml.models import TrainSpec
    from jupyter_cloudml.packaging import package_cell

    lib = tmp_path / "tinylib"
    (lib / "tinylib").mkdir(parents=True)
    (lib / "tinylib" / "__init__.py").write_text("ANSWER = 42\n")
    (lib / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "tinylib"\nversion = "1.0"\n'
    )
    package = package_cell(
        "import tinylib\nprint(tinylib.ANSWER, tinylib.__file__)",
        source_dir=tmp_path,
        pip=[str(lib)],
    )
    first = wait(backend, backend.submit(TrainSpec(name="deps", package=package)).id, 300)
    assert first.status is JobStatus.SUCCEEDED, log_text(backend, first.id)
    answer, path = next(iter(backend.logs(first.id, replica="worker-0"))).text.split()
    assert answer == "42" and "/envs/" in path
    assert any(e.reason == "Installing" for e in backend.events(first.id))
    assert "Successfully installed tinylib" in log_text(backend, first.id, replica="setup")
    second = wait(backend, backend.submit(TrainSpec(name="deps", package=package)).id, 300)
    assert second.status is JobStatus.SUCCEEDED
    assert not any(e.reason == "Installing" for e in backend.events(second.id))  # cached


def test_failing_requirements_fail_the_job_with_a_pointer_to_the_log(backend, tmp_path):
    from jupyter_cloudml.models import TrainSpec
    from jupyter_cloudml.packaging import package_cell

    package = package_cell("print('never')", source_dir=tmp_path, pip=[str(tmp_path / "nope")])
    done = wait(backend, backend.submit(TrainSpec(name="deps", package=package)).id, 120)
    assert done.status is JobStatus.FAILED
    assert "installing the requirements failed" in done.reason and "'setup' log" in done.reason
    assert log_text(backend, done.id, replica="setup")


def test_a_job_that_waits_longer_than_its_maximum_wait_fails_saying_for_what(
    isolated_home, make_spec
):
    from jupyter_cloudml.backends.local import LocalBackend

    backend = LocalBackend(home=str(isolated_home), cpu_slots=1)
    blocker = backend.submit(make_spec("import time; time.sleep(60)", name="busy"))
    job = backend.submit(make_spec("print(1)", name="patient", max_wait=0.5))
    assert backend.get(job.id).status is JobStatus.QUEUED
    done = wait(backend, job.id)
    assert done.status is JobStatus.FAILED
    assert done.reason.startswith("waited longer than its maximum wait of 0.5s (waiting for")
    backend.cancel(blocker.id)


def test_a_service_account_is_named_where_jobs_run_as_you(backend, make_spec):
    job = backend.submit(make_spec("print(1)", service_account="trainer-sa"))
    (identity,) = [e for e in backend.events(job.id) if e.reason == "Identity"]
    assert identity.message == "ServiceAccount trainer-sa: jobs here run as you"
