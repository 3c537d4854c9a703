"""`models deploy ... --backend kubernetes --dry-run --output yaml` (and `%cloudml_deploy`): the
manifests a cluster would get, from the backend's preview, printed without a cluster."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
import yaml
from IPython.core.error import UsageError

from jupyter_cloudml.backends.kubernetes.backend import KubernetesBackend
from jupyter_cloudml.cli import main

MODEL = ["--model", "job:iris-3f9a1c/model.joblib", "--framework", "sklearn"]
YAML = ["--backend", "kubernetes", "--dry-run", "--output", "yaml"]


@pytest.fixture(autouse=True)
def cluster_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CLOUDML_NAMESPACE", "CLOUDML_SHARED_CLAIM", "CLOUDML_SHARED_MOUNT"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """A dry run or a mistake must reach no cluster: there is none to reach (no kubeconfig),
    and the backend's connection to the API fails the test if it is ever made."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))

    def refuse(self):
        raise AssertionError("the dry run reached the cluster API")

    monkeypatch.setattr(KubernetesBackend, "api", property(refuse))


pytestmark = pytest.mark.usefixtures("no_cluster")


class NoClient:
    """Stands for the magics' Client: any use fails the test."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the magic used its Client ({name})")


def deploy(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    code = main(["models", "deploy", "iris", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return [doc for doc in yaml.safe_load_all(out) if doc]


def test_kserve_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    (doc,) = deploy(capsys, *MODEL, *YAML, "--replicas", "2", "--memory", "1Gi")
    assert doc["kind"] == "InferenceService" and doc["metadata"]["namespace"] == "default"
    predictor = doc["spec"]["predictor"]
    assert predictor["minReplicas"] == predictor["maxReplicas"] == 2
    assert predictor["model"]["modelFormat"] == {"name": "sklearn"}
    assert predictor["model"]["storageUri"] == (
        "pvc://cloudml-shared/jobs/iris-3f9a1c/job_dir/model.joblib"
    )
    assert predictor["model"]["resources"]["limits"]["memory"] == "1Gi"
    versions = json.loads(doc["metadata"]["annotations"]["cloudml.io/versions"])
    assert [v["model"] for v in versions] == ["job:iris-3f9a1c/model.joblib"]


def test_a_split_shows_the_canary(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDML_NAMESPACE", "team-a")
    monkeypatch.setenv("CLOUDML_SHARED_CLAIM", "team-a-shared")
    (doc,) = deploy(capsys, *MODEL, *YAML, "--version", "v2", "--traffic", "v1=90,v2=10")
    assert doc["metadata"]["namespace"] == "team-a"
    assert doc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert doc["spec"]["predictor"]["model"]["storageUri"].startswith("pvc://team-a-shared/")
    traffic = json.loads(doc["metadata"]["annotations"]["cloudml.io/traffic"])
    assert traffic == {"v2": 10, "v1": 90}


def test_three_versions_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*MODEL, *YAML, "--version", "v3", "--traffic", "v1=50,v2=25,v3=25"]
    assert main(["models", "deploy", "iris", *argv]) == 2
    assert "3 versions at once" in capsys.readouterr().err


def test_plain_engine(capsys: pytest.CaptureFixture[str]) -> None:
    docs = deploy(capsys, "--model", "s3://bucket/iris/", "--framework", "xgboost", *YAML,
                  "--engine", "plain", "--version", "v2", "--traffic", "v1=100,v2=0")  # fmt: skip
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Deployment", "iris-v2"),
        ("Service", "iris-v2"),
        ("Service", "iris"),
    ]
    for doc in docs:
        for version in ("1.30.0", "1.37.0"):
            kubernetes_validate.validate(doc, version, strict=True)
    assert docs[2]["spec"]["selector"]["cloudml.io/version"] == "v1"
    pod = docs[0]["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["command"][-2:] == ["s3://bucket/iris/", "/mnt/models"]


def test_plain_engine_cannot_split(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*MODEL, *YAML, "--engine", "plain", "--version", "v2", "--traffic", "v1=90,v2=10"]
    assert main(["models", "deploy", "iris", *argv]) == 1
    err = capsys.readouterr().err
    assert "needs a weighted split" in err and "--engine kserve" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*MODEL, "--dry-run", "--output", "yaml"], "add --backend kubernetes"),
        ([*MODEL, "--dry-run", "--engine", "plain"], "add --backend kubernetes"),
        ([*MODEL, *YAML, "--engine", "knative"], "invalid choice: 'knative'"),
        ([*MODEL, "--engine", "plain"], "--engine goes with --dry-run"),
        ([*MODEL, "--output", "yaml"], "--output yaml goes with --dry-run"),
        (["--model", "./m.joblib", "--framework", "sklearn", *YAML], "cannot read"),
    ],
)
def test_mistakes_say_what_to_do(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["models", "deploy", "iris", *argv]) == 2
    assert message in capsys.readouterr().err


def test_text_and_json_dry_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "deploy", "iris", *MODEL, "--dry-run", "--replicas", "2"]) == 0
    out = capsys.readouterr().out
    assert "iris (next version): sklearn model job:iris-3f9a1c/model.joblib" in out
    assert "(dry run: nothing deployed)" in out
    assert main(["models", "deploy", "iris", *MODEL, "--dry-run", "--output", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "iris" and data["replicas"] == 1 and data["framework"] == "sklearn"


def test_help_documents_the_assumptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "deploy", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--engine {kserve,plain}" in help_text
    assert "pvc://CLAIM/jobs/ID/job_dir/PATH" in help_text and "cloudml-shared" in help_text


def test_the_deploy_magic_prints_them_too(shell, capsys: pytest.CaptureFixture[str]) -> None:
    shell.magics_manager.registry["CloudMLMagics"].client = NoClient()
    shell.run_line_magic(
        "cloudml_deploy", "iris --model gs://b/iris.bst --framework xgboost " + " ".join(YAML)
    )
    (doc,) = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert doc["spec"]["predictor"]["model"]["storageUri"] == "gs://b/iris.bst"
    plain = "models deploy iris --model gs://b/m --framework onnx --engine plain"
    shell.run_line_magic("cloudml", f"{plain} {' '.join(YAML)}")
    kinds = [d["kind"] for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert kinds == ["Deployment", "Service", "Service"]
    with pytest.raises(UsageError, match="only goes with --dry-run"):
        shell.run_line_magic(
            "cloudml_deploy", "iris --model gs://b/m --framework onnx --backend kubernetes"
        )
