"""The command of every training pod: ``python -m jupyter_cloudml.backends.kubernetes.entrypoint``.

Reads the job description the manifests put in the environment (``CLOUDML_*``, see
``training._env``) and ``JOB_COMPLETION_INDEX`` (set by Kubernetes in Indexed Jobs), derives
the replica's name and distributed environment (TF_CONFIG or torch's env:// variables, with
peers addressed by the hostnames Kubernetes gives indexed-job pods under the job's Service),
unpacks the code package, installs its requirements, then runs pre-command, ``python -m
MODULE ARGS`` and post-command; the exit status is the trainer's. Standard library only, and
the project's pure helpers (``cluster``, ``launch``, ``packaging``) are imported lazily.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping

#: Exit status for a pod whose environment is unusable (matches the Jobs' podFailurePolicy).
USAGE_ERROR = 2
DEFAULT_OUTPUT_DIR = "outputs"


def replica_name(env: Mapping[str, str]) -> str:
    """This pod's replica name, e.g. ``worker-3``, from its role and completion index."""
    return f"{env['CLOUDML_ROLE']}-{int(env.get('JOB_COMPLETION_INDEX', '0'))}"


def peer_addresses(env: Mapping[str, str]) -> dict[str, str]:
    """Every replica's ``host:port``: ``<job>-<role>-<index>.<service>.<namespace>.svc:<port>``."""
    counts = json.loads(env["CLOUDML_REPLICAS"])
    job, service = env["CLOUDML_JOB_NAME"], env["CLOUDML_SERVICE"]
    namespace, port = env["CLOUDML_NAMESPACE"], env["CLOUDML_PORT"]
    return {
        f"{role}-{i}": f"{job}-{role}-{i}.{service}.{namespace}.svc:{port}"
        for role in counts
        for i in range(int(counts[role]))
    }


def replica_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The variables to add for this replica: CLOUDML_* of every backend and the framework's."""
    from jupyter_cloudml.backends.common.cluster import distributed_env
    from jupyter_cloudml.backends.common.launch import replica_env
    from jupyter_cloudml.models import Framework, Replicas

    counts = json.loads(env["CLOUDML_REPLICAS"])
    replicas = Replicas(
        chief=int(counts.get("chief", 0)),
        workers=int(counts.get("worker", 1)),
        ps=int(counts.get("ps", 0)),
        evaluators=int(counts.get("evaluator", 0)),
    )
    framework = Framework(env.get("CLOUDML_FRAMEWORK", "generic"))
    replica = replica_name(env)
    job_id = env["CLOUDML_JOB_ID"]
    workdir = env.get("CLOUDML_WORKDIR", ".")
    output_dir = env.get("CLOUDML_OUTPUT_DIR") or os.path.join(workdir, DEFAULT_OUTPUT_DIR)
    out = replica_env(
        job_id,
        replica,
        env.get("CLOUDML_PRIMARY", "worker-0"),
        int(env.get("CLOUDML_ATTEMPT", "1")),
        env.get("CLOUDML_JOB_DIR") or output_dir,
        output_dir,
    )
    addresses = peer_addresses(env) if env.get("CLOUDML_SERVICE") else {}
    args = json.loads(env.get("CLOUDML_ARGS", "[]"))
    if addresses:
        out.update(
            distributed_env(
                framework,
                replicas,
                replica,
                addresses,
                job_id,
                args,
                chief_name=env.get("CLOUDML_TF_CHIEF", "chief"),
                trial=env.get("CLOUD_ML_TRIAL_ID", ""),
            )
        )
    return out


def read_package(source: str) -> bytes:
    """The package archive from the mounted ConfigMap file or a (fsspec) URI."""
    if "://" in source and not source.startswith("file://"):
        import fsspec  # only needed, and only installed, where packages live on shared storage

        with fsspec.open(source, "rb") as f:
            data: bytes = f.read()
            return data
    with open(source.removeprefix("file://"), "rb") as f:
        return f.read()


def main() -> int:
    """Prepare and run this replica; its exit status."""
    from jupyter_cloudml.backends.common.launch import replica_command
    from jupyter_cloudml.packaging import unpack

    env = dict(os.environ)
    try:
        extra = replica_environment(env)
        module = env["CLOUDML_MODULE"]
        args = json.loads(env.get("CLOUDML_ARGS", "[]"))
        requirements = json.loads(env.get("CLOUDML_REQUIREMENTS", "[]"))
        package = env["CLOUDML_PACKAGE"]
    except (KeyError, ValueError) as exc:
        print(f"cloudml: the pod's job description is incomplete: {exc!r}", file=sys.stderr)
        return USAGE_ERROR
    workdir = env.get("CLOUDML_WORKDIR") or os.getcwd()
    code = os.path.join(workdir, "code")
    unpack(read_package(package), code)
    os.makedirs(extra["CLOUDML_OUTPUT_DIR"], exist_ok=True)
    if "://" not in extra["CLOUDML_JOB_DIR"]:  # remote URIs are the trainer's to write
        os.makedirs(extra["CLOUDML_JOB_DIR"], exist_ok=True)
    paths = [code]
    if requirements:
        deps = os.path.join(workdir, "deps")
        pip = [sys.executable, "-m", "pip", "install", "--no-input", "--target", deps]
        # From the code folder: built packages (--packages) are named by their path in it.
        status = subprocess.call([*pip, "--disable-pip-version-check", *requirements], cwd=code)
        if status:
            print(f"cloudml: pip install failed with exit code {status}", file=sys.stderr)
            return status
        paths.append(deps)
    argv, wrapper_env = replica_command(
        sys.executable,
        module,
        args,
        env.get("CLOUDML_PRE_COMMAND") or None,
        env.get("CLOUDML_POST_COMMAND") or None,
    )
    env.update(extra)
    env.update(wrapper_env)
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [env.get("PYTHONPATH")] if p])
    return subprocess.call(argv, cwd=code, env=env)


if __name__ == "__main__":
    sys.exit(main())
