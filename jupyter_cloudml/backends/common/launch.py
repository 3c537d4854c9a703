"""How a replica is started, the same on every backend: its command line and its CLOUDML_* env.

Pre/post commands wrap the trainer in a small POSIX shell script (the commands travel in
environment variables, so no quoting can break them); a failing pre-command stops the replica,
a failing post-command fails a replica whose trainer succeeded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ...models import STUDY_LABEL, TRIAL_LABEL

WRAPPER = r"""
if [ -n "$CLOUDML_PRE_COMMAND" ]; then
  sh -c "$CLOUDML_PRE_COMMAND" || { rc=$?;
    echo "cloudml: pre-command failed with exit code $rc" >&2; exit $rc; }
fi
"$@"; rc=$?
if [ -n "$CLOUDML_POST_COMMAND" ]; then
  CLOUDML_EXIT_CODE=$rc sh -c "$CLOUDML_POST_COMMAND" || { prc=$?;
    echo "cloudml: post-command failed with exit code $prc" >&2; [ $rc -ne 0 ] || exit $prc; }
fi
exit $rc
"""


def replica_command(
    python: str,
    module: str,
    args: Sequence[str],
    pre_command: str | None = None,
    post_command: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The argv that runs one replica and the env variables the argv relies on."""
    main = [python, "-m", module, *args]
    if not (pre_command or post_command):
        return main, {}
    env = {"CLOUDML_PRE_COMMAND": pre_command or "", "CLOUDML_POST_COMMAND": post_command or ""}
    return ["/bin/sh", "-c", WRAPPER, "cloudml-replica", *main], env


HYPERTUNE_DIR = "hypertune"


def hypertune_file(output_dir: str, replica: str) -> str:
    """Where Google's `cloudml-hypertune` of this replica writes its metrics."""
    return f"{output_dir}/{HYPERTUNE_DIR}/{replica}.metrics"


def google_job_env(job_id: str, labels: Mapping[str, str]) -> dict[str, str]:
    """What Google's AI Platform tells a replica about its job: `CLOUD_ML_JOB_ID` (a trial's
    is its study's id) and, in a study, `CLOUD_ML_TRIAL_ID`, the trial's number from 1."""
    if STUDY_LABEL in labels and TRIAL_LABEL in labels:
        trial = str(int(labels[TRIAL_LABEL]) + 1)
        return {"CLOUD_ML_JOB_ID": labels[STUDY_LABEL], "CLOUD_ML_TRIAL_ID": trial}
    return {"CLOUD_ML_JOB_ID": job_id}


def replica_env(
    job_id: str,
    replica: str,
    primary: str,
    attempt: int,
    job_dir: str,
    output_dir: str,
) -> dict[str, str]:
    """The CLOUDML_* variables every replica sees, whatever the backend."""
    role, index = replica.rsplit("-", 1)
    return {
        "CLOUD_ML_HP_METRIC_FILE": hypertune_file(output_dir, replica),
        "CLOUDML_JOB_ID": job_id,
        "CLOUDML_JOB_DIR": job_dir,
        "CLOUDML_OUTPUT_DIR": output_dir,
        "CLOUDML_REPLICA": replica,
        "CLOUDML_REPLICA_TYPE": role,
        "CLOUDML_REPLICA_INDEX": index,
        "CLOUDML_PRIMARY": "1" if replica == primary else "0",
        "CLOUDML_ATTEMPT": str(attempt),
        "PYTHONUNBUFFERED": "1",
    }
