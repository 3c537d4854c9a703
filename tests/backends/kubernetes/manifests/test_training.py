"""Kubernetes training manifests as plain data: strict schema validation, names, labels, env."""

from __future__ import annotations

import json
import re
from pathlib import Path

import kubernetes_validate
import pytest

from jupyter_cloudml.backends.kubernetes import labels as k8s_labels
from jupyter_cloudml.backends.kubernetes.entrypoint import replica_environment
from jupyter_cloudml.backends.kubernetes.manifests.training import (
    GPU_PRODUCT_LABEL,
    HIDDEN,
    hide_secret_values,
    owned_by,
    training_manifests,
)
from jupyter_cloudml.backends.kubernetes.names import dns_label, is_dns_label, job_name
from jupyter_cloudml.exceptions import InvalidSpec
from jupyter_cloudml.models import Framework, Replicas, Resources, TrainSpec
from jupyter_cloudml.packaging import package_cell

VERSIONS = ("1.30.0", "1.37.0")
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NS = "team-a"


def spec_of(tmp_path: Path, **fields) -> TrainSpec:
    package = package_cell("print(1)", source_dir=tmp_path)
    return TrainSpec(name=fields.pop("name", "mnist"), package=package, **fields)


def check_all(docs: list[dict], job_id: str) -> None:
    """Strict schemas, DNS-1123 names (and hostnames), our labels on every object and pod."""
    for doc in docs:
        for version in VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
        meta = doc["metadata"]
        assert DNS_1123.match(meta["name"]) and len(meta["name"]) <= 63, meta["name"]
        assert meta["namespace"] == NS
        for labels in [meta["labels"]] + (
            [doc["spec"]["template"]["metadata"]["labels"]] if doc["kind"] == "Job" else []
        ):
            assert labels[k8s_labels.MANAGED_BY_KEY] == "jupyter-cloudml"
            assert labels[k8s_labels.JOB_KEY] == job_name(job_id)
        assert meta["annotations"][k8s_labels.JOB_ID_ANNOTATION] == job_id
        if doc["kind"] == "Job":
            completions = doc["spec"]["completions"]
            host = f"{meta['name']}-{completions - 1}"  # what Kubernetes names the last pod
            assert DNS_1123.match(host) and len(host) <= 63


def by_kind(docs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for doc in docs:
        out.setdefault(doc["kind"], []).append(doc)
    return out


def env_of(job: dict) -> dict[str, str]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


def test_single_worker_generic(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, env={"FOO": "bar"}, labels={"team": "cv"}, image="my/img:1")
    docs = training_manifests(spec, "mnist-3f9a1c", NS)
    check_all(docs, "mnist-3f9a1c")
    assert [d["kind"] for d in docs] == ["ConfigMap", "Job"]  # one replica: no Service
    cm, job = docs
    assert cm["metadata"]["name"] == "mnist-3f9a1c-code" and cm["immutable"] is True
    assert job["metadata"]["name"] == "mnist-3f9a1c-worker"
    assert job["metadata"]["labels"]["team"] == "cv"
    assert job["metadata"]["labels"][k8s_labels.ROLE_KEY] == "worker"
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 1
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and "subdomain" not in pod
    container = pod["containers"][0]
    assert container["image"] == "my/img:1"
    assert container["command"][-1] == "jupyter_cloudml.backends.kubernetes.entrypoint"
    assert container["resources"] == {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}
    env = env_of(job)
    assert env["FOO"] == "bar" and env["CLOUDML_MODULE"] == spec.package.module
    assert env["CLOUDML_PACKAGE"] == "/opt/cloudml/package/package.tar.gz"
    assert json.loads(env["CLOUDML_REPLICAS"]) == {"chief": 0, "worker": 1, "ps": 0, "evaluator": 0}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["code"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["code"]["configMap"]["name"] == "mnist-3f9a1c-code"


def test_secrets_become_a_secret_every_replica_reads_by_reference(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        framework=Framework.TENSORFLOW,
        replicas=Replicas(workers=2, ps=1, chief=1),
        env={"LR": "0.1"},
        secrets={"API_TOKEN": "s3cr3t", "DB_URL": "postgres://u:p@db/x"},
    )
    docs = training_manifests(spec, "mnist-3f9a1c", NS)
    check_all(docs, "mnist-3f9a1c")
    kinds = by_kind(docs)
    (secret,) = kinds["Secret"]
    assert secret["metadata"]["name"] == "mnist-3f9a1c-env" and secret["immutable"] is True
    assert secret["stringData"] == {"API_TOKEN": "s3cr3t", "DB_URL": "postgres://u:p@db/x"}
    assert [d["kind"] for d in docs].index("Secret") < [d["kind"] for d in docs].index("Job")
    for job in kinds["Job"]:
        env = job["spec"]["template"]["spec"]["containers"][0]["env"]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e}
        assert refs == {
            "API_TOKEN": {"name": "mnist-3f9a1c-env", "key": "API_TOKEN"},
            "DB_URL": {"name": "mnist-3f9a1c-env", "key": "DB_URL"},
        }
        assert "s3cr3t" not in json.dumps(job)
    shown = hide_secret_values(docs)
    assert "s3cr3t" not in json.dumps(shown) and secret["stringData"]["API_TOKEN"] == "s3cr3t"
    assert by_kind(shown)["Secret"][0]["stringData"] == {"API_TOKEN": HIDDEN, "DB_URL": HIDDEN}
    assert "Secret" not in by_kind(training_manifests(spec_of(tmp_path), "mnist-3f9a1c", NS))


def test_default_image_and_fractional_cpu(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, resources=Resources(cpu=0.5, memory="2Gi"))
    job = training_manifests(spec, "j-1", NS, image_default="python:3.12")[-1]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "python:3.12"
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "2Gi"}
    spec = spec_of(tmp_path, resources=Resources(cpu=0))
    job = training_manifests(spec, "j-1", NS)[-1]
    assert "resources" not in job["spec"]["template"]["spec"]["containers"][0]


def test_tensorflow_ps_workers_gpus(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        framework=Framework.TENSORFLOW,
        replicas=Replicas(chief=1, workers=2, ps=1),
        resources=Resources(cpu=4, memory="16Gi", gpus=1, gpu_type="a100"),
        node_selector={"pool": "train"},
    )
    docs = training_manifests(spec, "mnist-3f9a1c", NS)
    check_all(docs, "mnist-3f9a1c")
    kinds = by_kind(docs)
    assert [d["kind"] for d in docs] == ["ConfigMap", "Service", "Job", "Job", "Job"]
    svc = kinds["Service"][0]["spec"]
    assert svc["clusterIP"] == "None" and svc["publishNotReadyAddresses"] is True
    assert svc["selector"] == k8s_labels.job_match_labels("mnist-3f9a1c")
    assert svc["ports"][0]["port"] == 2222
    jobs = {j["metadata"]["labels"][k8s_labels.ROLE_KEY]: j for j in kinds["Job"]}
    assert list(jobs) == ["chief", "worker", "ps"]
    assert [jobs[r]["spec"]["completions"] for r in jobs] == [1, 2, 1]
    for role, job in jobs.items():
        pod = job["spec"]["template"]["spec"]
        assert pod["subdomain"] == "mnist-3f9a1c"
        assert pod["nodeSelector"] == {GPU_PRODUCT_LABEL: "NVIDIA-A100-SXM4-80GB", "pool": "train"}
        assert pod["tolerations"] == [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
        limits = pod["containers"][0]["resources"]["limits"]
        assert limits == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
        assert env_of(job)["CLOUDML_ROLE"] == role
        assert env_of(job)["CLOUDML_SERVICE"] == "mnist-3f9a1c"


def test_each_role_gets_its_own_resources_image_and_gpu_placement(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        framework=Framework.TENSORFLOW,
        replicas=Replicas(chief=1, workers=2, ps=1, evaluators=1),
        resources=Resources(cpu=4, memory="16Gi", gpus=1, gpu_type="t4"),
        role_resources={"ps": Resources(cpu=8, memory="32Gi"), "evaluator": Resources(cpu=1)},
        role_images={"ps": "tf-cpu:2.15"},
        image="tf-gpu:2.15",
    )
    docs = training_manifests(spec, "mnist-3f9a1c", NS)
    check_all(docs, "mnist-3f9a1c")
    jobs = {j["metadata"]["labels"][k8s_labels.ROLE_KEY]: j for j in by_kind(docs)["Job"]}
    assert list(jobs) == ["chief", "worker", "ps", "evaluator"]
    pods = {role: job["spec"]["template"]["spec"] for role, job in jobs.items()}
    limits = {role: pod["containers"][0]["resources"]["limits"] for role, pod in pods.items()}
    assert limits == {
        "chief": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
        "worker": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
        "ps": {"cpu": "8", "memory": "32Gi"},
        "evaluator": {"cpu": "1"},
    }
    images = {role: pod["containers"][0]["image"] for role, pod in pods.items()}
    assert images == {
        "chief": "tf-gpu:2.15",
        "worker": "tf-gpu:2.15",
        "ps": "tf-cpu:2.15",
        "evaluator": "tf-gpu:2.15",
    }
    assert "tolerations" in pods["worker"] and GPU_PRODUCT_LABEL in pods["chief"]["nodeSelector"]
    for role in ("ps", "evaluator"):  # no GPU: not sent to GPU nodes
        assert "tolerations" not in pods[role] and "nodeSelector" not in pods[role]


def test_tf_config_with_a_master_and_an_evaluator_as_google_writes_it(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        framework=Framework.TENSORFLOW,
        replicas=Replicas(chief=1, workers=2, ps=1, evaluators=1),
        tf_chief_name="master",
        labels={"cloudml.io/study": "tune-1a2b3c", "cloudml.io/trial": "4"},
    )
    cluster = {
        "master": [host("chief", 0)],
        "worker": [host("worker", 0), host("worker", 1)],
        "ps": [host("ps", 0)],
    }  # evaluators are never in the cluster
    for role, index, task in [("chief", 0, "master"), ("evaluator", 0, "evaluator")]:
        env = pod_env(tmp_path, spec, role, index)
        assert env["CLOUD_ML_JOB_ID"] == "tune-1a2b3c" and env["CLOUD_ML_TRIAL_ID"] == "5"
        config = json.loads(replica_environment(env)["TF_CONFIG"])
        assert config["cluster"] == cluster
        assert config["task"] == {"type": task, "index": index, "trial": "5"}
        assert config["environment"] == "cloud"


def test_unknown_gpu_type_passes_through(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, resources=Resources(gpus=2, gpu_type="NVIDIA-B200"))
    job = training_manifests(spec, "j-1", NS)[-1]
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {GPU_PRODUCT_LABEL: "NVIDIA-B200"}
    spec = spec_of(tmp_path, resources=Resources(gpus=1, gpu_type="nvidia-tesla-t4"))
    job = training_manifests(spec, "j-1", NS)[-1]
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {GPU_PRODUCT_LABEL: "Tesla-T4"}


def test_pytorch_four_workers(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, framework=Framework.PYTORCH, replicas=Replicas(workers=4))
    docs = training_manifests(spec, "bert-0a1b2c", NS)
    check_all(docs, "bert-0a1b2c")
    kinds = by_kind(docs)
    assert len(kinds["Job"]) == 1 and len(kinds["Service"]) == 1
    job = kinds["Job"][0]
    assert job["metadata"]["name"] == "bert-0a1b2c-worker"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 4
    assert kinds["Service"][0]["spec"]["ports"][0]["port"] == 29500
    assert env_of(job)["CLOUDML_PORT"] == "29500"


def test_failure_handling_and_cleanup(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, retries=3, timeout=90.5)
    job = training_manifests(spec, "j-1", NS, ttl_seconds=600)[-1]["spec"]
    assert job["backoffLimit"] == 3
    assert job["activeDeadlineSeconds"] == 91
    assert job["ttlSecondsAfterFinished"] == 600
    assert "backoffLimitPerIndex" not in job
    rules = job["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "FailJob",
        "onExitCodes": {"operator": "In", "values": [2, 126, 127]},
    }
    disruption = [{"type": "DisruptionTarget", "status": "True"}]
    assert rules[1] == {"action": "Ignore", "onPodConditions": disruption}
    no_timeout = training_manifests(spec_of(tmp_path), "j-1", NS)[-1]["spec"]
    assert "activeDeadlineSeconds" not in no_timeout and no_timeout["backoffLimit"] == 0


def test_pre_post_commands_and_args_in_env(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, args=("--lr", "0.1"), pre_command="echo a", post_command="echo b")
    env = env_of(training_manifests(spec, "j-1", NS)[-1])
    assert env["CLOUDML_PRE_COMMAND"] == "echo a" and env["CLOUDML_POST_COMMAND"] == "echo b"
    assert json.loads(env["CLOUDML_ARGS"]) == ["--lr", "0.1"]


@pytest.mark.parametrize(
    "job_id",
    ["My_Notebook (copy 2)", "9lives-abc123", "x" * 200, "a" * 100 + "-1", "--__--"],
)
def test_odd_job_ids_make_valid_names(tmp_path: Path, job_id: str) -> None:
    spec = spec_of(tmp_path, framework=Framework.TENSORFLOW, replicas=Replicas(1, 2, 1))
    docs = training_manifests(spec, job_id, NS)
    check_all(docs, job_id)
    svc = by_kind(docs)["Service"][0]["metadata"]["name"]
    assert svc[0].isalpha()  # Services are DNS-1035 labels


def test_dns_label() -> None:
    assert dns_label("mnist-3f9a1c") == "mnist-3f9a1c"
    slug = dns_label("My_Notebook (copy 2)")
    assert slug.startswith("my-notebook-copy-2-") and is_dns_label(slug)
    assert dns_label("my-notebook-copy-2") != slug  # lossy slugs are made unique by a hash
    a, b = dns_label("a" * 100 + "1"), dns_label("a" * 100 + "2")
    assert a != b and len(a) == len(b) == 63 and is_dns_label(a)
    assert len(dns_label("b" * 100, 20)) == 20
    assert job_name("9lives")[0].isalpha() and is_dns_label(job_name("9lives"))
    assert is_dns_label(dns_label("???"))


def test_package_too_big_for_configmap(tmp_path: Path) -> None:
    spec = spec_of(tmp_path)
    with pytest.raises(InvalidSpec, match="URI"):
        training_manifests(spec, "j-1", NS, package_in_configmap_max=10)
    uri = "s3://bucket/pkgs/j-1.tar.gz"
    docs = training_manifests(spec, "j-1", NS, package_in_configmap_max=10, package_uri=uri)
    check_all(docs, "j-1")
    assert [d["kind"] for d in docs] == ["Job"]
    job = docs[0]
    assert env_of(job)["CLOUDML_PACKAGE"] == uri
    pod = job["spec"]["template"]["spec"]
    assert "code" not in {v["name"] for v in pod["volumes"]}


def test_owned_by_copies(tmp_path: Path) -> None:
    docs = training_manifests(spec_of(tmp_path), "j-1", NS)
    owned = owned_by(docs[0], "j-1-worker", "Job", "uid-1")
    assert owned["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "j-1-worker", "uid": "uid-1"}
    ]
    assert "ownerReferences" not in docs[0]["metadata"]
    for version in VERSIONS:
        kubernetes_validate.validate(owned, version, strict=True)


def test_selectors() -> None:
    assert k8s_labels.job_selector("j-1") == (
        "app.kubernetes.io/managed-by=jupyter-cloudml,cloudml.io/job=j-1"
    )
    assert k8s_labels.managed_selector() == "app.kubernetes.io/managed-by=jupyter-cloudml"


# --- the in-pod entrypoint ----------------------------------------------------------------------


def pod_env(tmp_path: Path, spec: TrainSpec, role: str, index: int) -> dict[str, str]:
    jobs = [d for d in training_manifests(spec, "mnist-3f9a1c", NS) if d["kind"] == "Job"]
    job = next(j for j in jobs if env_of(j)["CLOUDML_ROLE"] == role)
    return {**env_of(job), "JOB_COMPLETION_INDEX": str(index)}


def host(role: str, index: int) -> str:
    return f"mnist-3f9a1c-{role}-{index}.mnist-3f9a1c.{NS}.svc:2222"


@pytest.mark.parametrize(("role", "index"), [("chief", 0), ("worker", 1), ("ps", 0)])
def test_tf_config_from_completion_index(tmp_path: Path, role: str, index: int) -> None:
    spec = spec_of(
        tmp_path, framework=Framework.TENSORFLOW, replicas=Replicas(1, 2, 1), args=("--x", "1")
    )
    out = replica_environment(pod_env(tmp_path, spec, role, index))
    assert json.loads(out["TF_CONFIG"]) == {
        "cluster": {
            "chief": [host("chief", 0)],
            "worker": [host("worker", 0), host("worker", 1)],
            "ps": [host("ps", 0)],
        },
        "task": {"type": role, "index": index, "trial": ""},
        "job": {"job_name": "mnist-3f9a1c", "args": ["--x", "1"]},
        "environment": "cloud",
    }
    assert out["CLOUDML_REPLICA"] == f"{role}-{index}"
    assert out["CLOUDML_PRIMARY"] == ("1" if role == "chief" else "0")


def test_torch_env_from_completion_index(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, framework=Framework.PYTORCH, replicas=Replicas(workers=4))
    out = replica_environment(pod_env(tmp_path, spec, "worker", 3))
    assert out["MASTER_ADDR"] == f"mnist-3f9a1c-worker-0.mnist-3f9a1c.{NS}.svc"
    assert out["MASTER_PORT"] == "29500"
    assert out["RANK"] == "3" and out["WORLD_SIZE"] == "4"
    assert out["CLOUDML_REPLICA"] == "worker-3" and out["CLOUDML_PRIMARY"] == "0"


def test_generic_single_replica_has_no_distributed_env(tmp_path: Path) -> None:
    out = replica_environment(pod_env(tmp_path, spec_of(tmp_path), "worker", 0))
    assert "TF_CONFIG" not in out and "RANK" not in out
    assert out["CLOUDML_REPLICA"] == "worker-0" and out["CLOUDML_PRIMARY"] == "1"
    assert out["CLOUDML_OUTPUT_DIR"] == "/opt/cloudml/work/outputs"


def test_entrypoint_runs_the_package(tmp_path: Path) -> None:
    """The pod's command, run here with the env its manifest gives it: pre, trainer, post."""
    import os
    import subprocess
    import sys

    spec = spec_of(tmp_path, pre_command="echo pre", post_command="echo post $CLOUDML_EXIT_CODE")
    env = pod_env(tmp_path, spec, "worker", 0)
    archive = tmp_path / "package.tar.gz"
    archive.write_bytes(spec.package.archive)
    env.update(CLOUDML_PACKAGE=str(archive), CLOUDML_WORKDIR=str(tmp_path / "work"))
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter_cloudml.backends.kubernetes.entrypoint"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["pre", "1", "post", "0"]
