"""`--dry-run --output yaml --backend kubernetes`: the manifests a cluster would get, printed
without a cluster, and valid for Kubernetes 1.30 and 1.37 (official schemas, strict)."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from jupyter_cloudml.cli import main


@pytest.fixture
def script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("print('training')\n")
    return "train.py"


def manifests(capsys, *argv: str) -> list[dict]:
    code = main(["train", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return [doc for doc in yaml.safe_load_all(out) if doc]


def test_the_issue_command_prints_strictly_valid_manifests(capsys, script):
    docs = manifests(
        capsys,
        *[script, "--backend", "kubernetes", "--dry-run", "--output", "yaml"],
        *["--framework", "tensorflow", "--ps", "1", "--workers", "2"],
        *["--gpus", "1", "--gpu-type", "a100"],
    )
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == ["ConfigMap", "Job", "Job", "Job", "Service"]
    for doc in docs:
        for version in ("1.30.0", "1.37.0"):
            kubernetes_validate.validate(doc, version, strict=True)
    jobs = {
        doc["metadata"]["labels"]["cloudml.io/replica-type"]: doc
        for doc in docs
        if doc["kind"] == "Job"
    }
    assert {role: job["spec"]["completions"] for role, job in jobs.items()} == {
        "chief": 1,
        "worker": 2,
        "ps": 1,
    }
    pod = jobs["worker"]["spec"]["template"]["spec"]
    assert str(pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]) == "1"
    assert pod["nodeSelector"]["nvidia.com/gpu.product"]


GOOGLE_CONFIG = """
trainingInput:
  scaleTier: CUSTOM
  masterType: n1-highmem-8
  masterConfig:
    acceleratorConfig: {count: 1, type: NVIDIA_TESLA_T4}
    imageUri: gcr.io/p/trainer:gpu
  workerType: n1-standard-4
  workerCount: 2
  parameterServerType: large_model
  parameterServerCount: 1
  evaluatorType: standard
  evaluatorCount: 1
  serviceAccount: trainer-sa
  region: us-central1
"""


def test_a_google_config_gives_each_role_its_pods(capsys, script, tmp_path):
    (tmp_path / "config.yaml").write_text(GOOGLE_CONFIG)
    argv = [script, "--config", "config.yaml", "--backend", "kubernetes", "--dry-run"]
    code = main(["train", *argv, "--output", "yaml"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "# config trainingInput.region: ignored: there are no regions here" in out
    docs = [doc for doc in yaml.safe_load_all(out) if doc]
    for doc in docs:
        for version in ("1.30.0", "1.37.0"):
            kubernetes_validate.validate(doc, version, strict=True)
    pods = {
        doc["metadata"]["labels"]["cloudml.io/replica-type"]: doc["spec"]["template"]["spec"]
        for doc in docs
        if doc["kind"] == "Job"
    }
    limits = {role: pod["containers"][0]["resources"]["limits"] for role, pod in pods.items()}
    assert limits == {
        "chief": {"cpu": "8", "memory": "52Gi", "nvidia.com/gpu": "1"},
        "worker": {"cpu": "4", "memory": "15Gi"},
        "ps": {"cpu": "8", "memory": "52Gi"},
        "evaluator": {"cpu": "4", "memory": "15Gi"},
    }
    assert pods["chief"]["nodeSelector"] == {"nvidia.com/gpu.product": "Tesla-T4"}
    assert pods["chief"]["containers"][0]["image"] == "gcr.io/p/trainer:gpu"
    assert {pod["serviceAccountName"] for pod in pods.values()} == {"trainer-sa"}


def test_yaml_needs_the_kubernetes_backend(capsys, script):
    assert main(["train", script, "--dry-run", "--output", "yaml"]) == 2
    assert "add --backend kubernetes" in capsys.readouterr().err


def test_the_cell_magic_prints_them_too(shell, capsys):
    shell.run_cell_magic(
        "cloudml_train",
        "--name cell-job --backend kubernetes --dry-run --output yaml --workers 2 "
        "--framework pytorch",
        "print('hello')\n",
    )
    docs = [doc for doc in yaml.safe_load_all(capsys.readouterr().out) if doc]
    assert any(doc["kind"] == "Job" and doc["spec"]["completions"] == 2 for doc in docs)


def test_the_preview_is_what_this_backend_would_submit(capsys, script, monkeypatch):
    """Built from the backend's own settings (image, namespace, shared volume), not defaults."""
    monkeypatch.setenv("CLOUDML_NAMESPACE", "team-a")
    monkeypatch.setenv("CLOUDML_IMAGE", "registry.example.com/trainer:7")
    monkeypatch.setenv("CLOUDML_SHARED_CLAIM", "team-a-shared")
    docs = manifests(capsys, script, "--backend", "kubernetes", "--dry-run", "--output", "yaml")
    (job,) = [doc for doc in docs if doc["kind"] == "Job"]
    assert {doc["metadata"]["namespace"] for doc in docs} == {"team-a"}
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.example.com/trainer:7"
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["team-a-shared"]
