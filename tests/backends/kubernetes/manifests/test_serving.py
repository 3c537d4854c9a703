"""Kubernetes serving and TensorBoard manifests as plain data: Deployments and Services strictly
valid for Kubernetes 1.30 and 1.37, InferenceServices checked against KServe's own generated
models (in the serving environment), names, labels, traffic splits and the errors of bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
from cloudml_testkit import REPO

from jupyter_cloudml.backends.kubernetes import labels as k8s_labels
from jupyter_cloudml.backends.kubernetes.manifests.kserve import (
    inference_service,
    kserve_grpc_url,
    kserve_split,
)
from jupyter_cloudml.backends.kubernetes.manifests.plain import main_service, plain_manifests
from jupyter_cloudml.backends.kubernetes.manifests.serving import (
    DEFAULT_SERVING_IMAGE,
    DEPLOYMENT_NAME_MAX,
    KSERVE_FORMATS,
    MAX_RECORDED_VERSIONS,
    PvcLocation,
    model_source,
    model_storage_uri,
    parse_pvc_uri,
)
from jupyter_cloudml.backends.kubernetes.manifests.tensorboard import (
    tensorboard_id,
    tensorboard_manifests,
)
from jupyter_cloudml.backends.kubernetes.manifests.training import SharedVolume
from jupyter_cloudml.exceptions import Conflict, InvalidSpec, Unsupported
from jupyter_cloudml.models import DeploySpec, ModelFramework, Resources
from jupyter_cloudml.serving.replica import replica_command

VERSIONS = ("1.30.0", "1.37.0")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
NS = "team-a"
URI = "pvc://cloudml-shared/jobs/iris-3f9a1c/job_dir/model.joblib"
REPO = REPO
SERVING_PYTHON = REPO / ".venv-serving" / "bin" / "python"
SHARED = SharedVolume("cloudml-shared", "/mnt/cloudml")


def spec_of(**fields) -> DeploySpec:
    fields.setdefault("name", "iris")
    fields.setdefault("model", "job:iris-3f9a1c/model.joblib")
    fields.setdefault("framework", ModelFramework.SKLEARN)
    return DeploySpec(**fields)


def strict(docs: list[dict]) -> None:
    """Official schemas, strictly; DNS-1035 names of at most 63 characters; our labels."""
    for doc in docs:
        for version in VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
        name = doc["metadata"]["name"]
        assert DNS_1035.match(name) and len(name) <= 63, name
        assert doc["metadata"]["labels"][k8s_labels.MANAGED_BY_KEY] == "jupyter-cloudml"


def isvc(spec: DeploySpec, previous: dict | None = None, **options) -> dict:
    options.setdefault("storage_uri", URI)
    return inference_service(spec, NS, previous=previous, created=1.0e9, **options)


def annotation(doc: dict, key: str):
    return json.loads(doc["metadata"]["annotations"][key])


# --- KServe -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("framework", "model_format"),
    [("sklearn", "sklearn"), ("xgboost", "xgboost"), ("pytorch", "pytorch"), ("onnx", "onnx")],
)
def test_kserve_runtimes_by_framework(framework: str, model_format: str) -> None:
    spec = spec_of(framework=ModelFramework(framework), replicas=3)
    doc = isvc(spec)
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert doc["kind"] == "InferenceService"
    assert doc["metadata"]["name"] == "iris" and doc["metadata"]["namespace"] == NS
    assert doc["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "jupyter-cloudml",
        "cloudml.io/deployment": "iris",
    }
    predictor = doc["spec"]["predictor"]
    assert predictor["minReplicas"] == predictor["maxReplicas"] == 3
    assert "canaryTrafficPercent" not in predictor
    assert predictor["labels"]["cloudml.io/version"] == "v1"
    assert predictor["model"]["modelFormat"] == {"name": model_format}
    assert predictor["model"]["storageUri"] == URI
    assert predictor["model"]["resources"] == {
        "requests": {"cpu": "500m"},
        "limits": {"cpu": "500m"},
    }
    assert annotation(doc, k8s_labels.VERSIONS_ANNOTATION) == [
        {
            "version": "v1",
            "model": "job:iris-3f9a1c/model.joblib",
            "framework": framework,
            "created": 1.0e9,
        }
    ]
    assert annotation(doc, k8s_labels.TRAFFIC_ANNOTATION) == {"v1": 100}


def test_kserve_resources_and_gpus() -> None:
    spec = spec_of(resources=Resources(cpu=2, memory="4Gi", gpus=1, gpu_type="a100"))
    predictor = isvc(spec)["spec"]["predictor"]
    assert predictor["model"]["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
    }
    assert predictor["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert predictor["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_kserve_custom_runs_our_model_server() -> None:
    spec = spec_of(framework=ModelFramework.CUSTOM, predictor="predictor:Model", version="v3")
    predictor = isvc(spec, serving_image="me/serving:1")["spec"]["predictor"]
    assert "model" not in predictor
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container" and container["image"] == "me/serving:1"
    assert container["command"] == replica_command(
        "python",
        name="iris",
        version="v3",
        framework="custom",
        model="/mnt/models",
        port=8080,
        host="0.0.0.0",
        predictor="predictor:Model",
        grpc_port=8081,
        grpc_host="$(POD_IP)",
    )
    assert {"name": "STORAGE_URI", "value": URI} in container["env"]
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in (
        container["env"]
    )
    # Knative routes one port: gRPC only in RawDeployment mode, where KServe's Service has both.
    assert container["ports"] == [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}]
    assert kserve_grpc_url(isvc(spec), NS) is None
    raw = isvc(spec, deployment_mode="RawDeployment")
    assert raw["spec"]["predictor"]["containers"][0]["ports"] == [
        {"name": "http1", "containerPort": 8080, "protocol": "TCP"},
        {"name": "grpc-port", "containerPort": 8081, "protocol": "TCP"},
    ]
    assert kserve_grpc_url(raw, NS) == f"iris-predictor.{NS}.svc:8081"


def test_kserve_own_server_for_a_framework() -> None:
    spec = spec_of(framework=ModelFramework.PYTORCH)
    predictor = isvc(spec, own_server_for={ModelFramework.PYTORCH})["spec"]["predictor"]
    assert "--framework" in predictor["containers"][0]["command"]
    assert "model" not in predictor


def test_unknown_framework_for_kserve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(KSERVE_FORMATS, ModelFramework.ONNX)
    with pytest.raises(InvalidSpec, match=r"no runtime here for framework 'onnx'.*--engine plain"):
        isvc(spec_of(framework=ModelFramework.ONNX))


def test_kserve_canary_then_full_rollout() -> None:
    v1 = isvc(spec_of())
    v2 = isvc(spec_of(version="v2", model="gs://b/v2/", traffic={"v1": 90, "v2": 10}), v1)
    assert v2["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert v2["spec"]["predictor"]["model"]["storageUri"] == URI  # as given to the builder
    assert [r["version"] for r in annotation(v2, k8s_labels.VERSIONS_ANNOTATION)] == ["v1", "v2"]
    assert annotation(v2, k8s_labels.TRAFFIC_ANNOTATION) == {"v2": 10, "v1": 90}
    # Same version again without a split: it takes everything; no canary field left behind.
    v2_all = isvc(spec_of(version="v2"), v2)
    assert "canaryTrafficPercent" not in v2_all["spec"]["predictor"]
    assert annotation(v2_all, k8s_labels.TRAFFIC_ANNOTATION) == {"v2": 100}
    assert [r["version"] for r in annotation(v2_all, k8s_labels.VERSIONS_ANNOTATION)] == [
        "v1",
        "v2",
    ]
    # A new version in 0 %: deployed, reachable by revision, no share yet.
    v3 = isvc(spec_of(version="v3", traffic={"v3": 0, "v2": 100}), v2_all)
    assert v3["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert annotation(v3, k8s_labels.TRAFFIC_ANNOTATION) == {"v3": 0, "v2": 100}


def test_kserve_split_during_a_canary_goes_with_the_rolled_out_version() -> None:
    records = [{"version": "v1"}, {"version": "v2"}]
    old = {"v1": 90, "v2": 10}  # v2 is the canary, v1 the rolled-out revision
    assert kserve_split("v3", {"v3": 20, "v1": 80}, records, old) == (20, {"v3": 20, "v1": 80})
    assert kserve_split("v3", {}, records, old) == (None, {"v3": 100})
    with pytest.raises(InvalidSpec, match=r"between v3 and v1, the version rolled out before"):
        kserve_split("v3", {"v3": 20, "v2": 80}, records, old)


def test_kserve_refuses_three_versions_at_once() -> None:
    v1 = isvc(spec_of())
    v2 = isvc(spec_of(version="v2", traffic={"v1": 50, "v2": 50}), v1)
    spec = spec_of(version="v3", traffic={"v1": 50, "v2": 25, "v3": 25})
    with pytest.raises(InvalidSpec, match=r"splits between 3 versions at once.*KServe"):
        isvc(spec, v2)


def test_kserve_split_names_only_deployed_versions() -> None:
    with pytest.raises(InvalidSpec, match=r"names v1, which is not deployed \(none yet\)"):
        isvc(spec_of(version="v2", traffic={"v1": 90, "v2": 10}))


def test_kserve_split_needs_serverless_mode() -> None:
    v1 = isvc(spec_of(), deployment_mode="RawDeployment")
    assert v1["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    spec = spec_of(version="v2", traffic={"v1": 90, "v2": 10})
    with pytest.raises(Unsupported, match="Serverless mode only"):
        isvc(spec, v1, deployment_mode="RawDeployment")


def test_kserve_will_not_take_over_a_foreign_or_broken_service() -> None:
    foreign = {"metadata": {"name": "iris", "labels": {}}}
    with pytest.raises(Conflict, match="does not manage"):
        isvc(spec_of(version="v2"), foreign)
    broken = isvc(spec_of())
    broken["metadata"]["annotations"][k8s_labels.TRAFFIC_ANNOTATION] = "{not json"
    with pytest.raises(Conflict, match="unreadable"):
        isvc(spec_of(version="v2"), broken)


def test_kserve_keeps_a_bounded_version_history() -> None:
    doc = isvc(spec_of())
    for n in range(2, 30):
        doc = isvc(spec_of(version=f"v{n}"), doc)
    records = annotation(doc, k8s_labels.VERSIONS_ANNOTATION)
    assert len(records) == MAX_RECORDED_VERSIONS and records[-1]["version"] == "v29"


KSERVE_CHECK = r"""
import json, re, sys
import kserve.models as km
import kubernetes.client.models as kc

SCALARS = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


def resolve(name):
    for module in (km, kc):
        cls = getattr(module, name, None)
        if cls is not None and hasattr(cls, "openapi_types"):
            return cls
    return None


def check(value, tp, path, errors):
    tp = tp.strip()
    m = re.fullmatch(r"(?:list|List)\[(.*)\]", tp)
    if m:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {value!r}")
            return None
        return [check(v, m[1], f"{path}[{i}]", errors) for i, v in enumerate(value)]
    m = re.fullmatch(r"dict\((\w+), (.*)\)", tp) or re.fullmatch(r"Dict\[(\w+), (.*)\]", tp)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping, got {value!r}")
            return None
        return {k: check(v, m[2], f"{path}.{k}", errors) for k, v in value.items()}
    if tp == "object":
        return value
    if tp == "ResourceQuantity":
        tp = "str" if isinstance(value, str) else "int"
    if tp in SCALARS:
        ok = isinstance(value, SCALARS[tp]) and (tp == "bool" or not isinstance(value, bool))
        if not ok:
            errors.append(f"{path}: expected {tp}, got {value!r}")
        return value
    cls = resolve(tp)
    if cls is None:
        errors.append(f"{path}: type {tp} is in neither kserve's nor kubernetes' models")
        return None
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a {tp} object, got {value!r}")
        return None
    attrs = {key: attr for attr, key in cls.attribute_map.items()}
    kwargs = {}
    for key, item in value.items():
        attr = attrs.get(key)
        if attr is None:
            errors.append(f"{path}.{key}: unknown field of {tp}")
            continue
        kwargs[attr] = check(item, cls.openapi_types[attr], f"{path}.{key}", errors)
    try:
        return cls(**kwargs)  # the generated models check required fields and enums
    except (TypeError, ValueError) as exc:
        errors.append(f"{path}: {tp}: {exc}")
        return None


docs = json.load(sys.stdin)
out = []
for doc in docs:
    errors = []
    check(doc, "V1beta1InferenceService", "", errors)
    out.append(errors)
json.dump(out, sys.stdout)
"""


def kserve_errors(docs: list[dict]) -> list[list[str]]:
    """Each document's errors against KServe's generated models (run in .venv-serving)."""
    proc = subprocess.run(
        [str(SERVING_PYTHON), "-c", KSERVE_CHECK],
        input=json.dumps(docs),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.skipif(
    not SERVING_PYTHON.exists(),
    reason=f"no serving environment at {SERVING_PYTHON.parent.parent} (kserve's models)",
)
def test_inference_services_match_kserve_models() -> None:
    gpu = Resources(cpu=1.5, memory="2Gi", gpus=2, gpu_type="t4")
    v1 = isvc(spec_of(resources=gpu, replicas=2), service_account="serving")
    docs = [
        *(isvc(spec_of(framework=f)) for f in KSERVE_FORMATS),
        v1,
        isvc(spec_of(version="v2", traffic={"v1": 75, "v2": 25}), v1),
        isvc(spec_of(framework=ModelFramework.CUSTOM, predictor="p:Model", resources=gpu)),
        isvc(spec_of(framework=ModelFramework.PYTORCH), own_server_for={ModelFramework.PYTORCH}),
        isvc(spec_of(name="9-lives"), deployment_mode="RawDeployment"),
        isvc(
            spec_of(framework=ModelFramework.CUSTOM, predictor="p:Model"),
            deployment_mode="RawDeployment",
        ),
    ]
    wrong_field = isvc(spec_of())
    wrong_field["spec"]["predictor"]["model"]["storageUrl"] = URI
    wrong_type = isvc(spec_of())
    wrong_type["spec"]["predictor"]["minReplicas"] = "2"
    no_name = isvc(spec_of(framework=ModelFramework.CUSTOM, predictor="p:Model"))
    del no_name["spec"]["predictor"]["containers"][0]["name"]
    *results, field_errors, type_errors, required_errors = kserve_errors(
        [*docs, wrong_field, wrong_type, no_name]
    )
    assert results == [[] for _ in docs]
    # The checker itself catches an unknown field, a wrong scalar type, a missing field.
    assert field_errors == [".spec.predictor.model.storageUrl: unknown field of V1beta1ModelSpec"]
    assert type_errors == [".spec.predictor.minReplicas: expected int, got '2'"]
    assert len(required_errors) == 1 and "name" in required_errors[0]


# --- plain Deployments and Services -----------------------------------------------------------


def by_kind(docs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for doc in docs:
        out.setdefault(doc["kind"], []).append(doc)
    return out


def test_plain_version_on_a_pvc() -> None:
    spec = spec_of(replicas=2, resources=Resources(cpu=1, memory="1Gi"))
    docs = plain_manifests(spec, NS, storage_uri=URI, serving_image="me/serving:1")
    strict(docs)
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Deployment", "iris-v1"),
        ("Service", "iris-v1"),
        ("Service", "iris"),
    ]
    deployment, version_svc, main_svc = docs
    version_labels = {
        "app.kubernetes.io/managed-by": "jupyter-cloudml",
        "cloudml.io/deployment": "iris",
        "cloudml.io/version": "v1",
    }
    assert deployment["metadata"]["labels"] == version_labels
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"]["matchLabels"] == version_labels
    assert deployment["spec"]["template"]["metadata"]["labels"] == version_labels
    record = annotation(deployment, k8s_labels.VERSION_INFO_ANNOTATION)
    assert record == {
        "version": "v1",
        "model": "job:iris-3f9a1c/model.joblib",
        "framework": "sklearn",
        "created": 0.0,
    }
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "me/serving:1"
    assert container["command"] == replica_command(
        "python",
        name="iris",
        version="v1",
        framework="sklearn",
        model="/mnt/models/model.joblib",
        port=8080,
        host="0.0.0.0",
        grpc_port=8081,
        grpc_host="$(POD_IP)",
    )
    assert container["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "grpc", "containerPort": 8081, "protocol": "TCP"},
    ]
    # gRPC listens on the pod's IP, which the Downward API gives as $POD_IP.
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in (
        container["env"]
    )
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/models/iris/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert pod["volumes"] == [
        {
            "name": "model",
            "persistentVolumeClaim": {"claimName": "cloudml-shared", "readOnly": True},
        }
    ]
    assert container["volumeMounts"] == [
        {
            "name": "model",
            "mountPath": "/mnt/models/model.joblib",
            "readOnly": True,
            "subPath": "jobs/iris-3f9a1c/job_dir/model.joblib",
        }
    ]
    assert "initContainers" not in pod
    assert version_svc["spec"]["selector"] == version_labels
    assert main_svc["spec"]["selector"] == version_labels
    assert main_svc["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "jupyter-cloudml",
        "cloudml.io/deployment": "iris",
    }
    assert annotation(main_svc, k8s_labels.TRAFFIC_ANNOTATION) == {"v1": 100}
    for svc in (version_svc, main_svc):
        assert svc["spec"]["ports"] == [
            {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
            {
                "name": "grpc",
                "port": 8081,
                "targetPort": "grpc",
                "protocol": "TCP",
                "appProtocol": "kubernetes.io/h2c",
            },
        ]


def test_plain_model_from_object_storage_is_fetched_first() -> None:
    spec = spec_of(
        framework=ModelFramework.CUSTOM,
        predictor="predictor:Model",
        resources=Resources(cpu=1, gpus=1),
    )
    docs = plain_manifests(spec, NS, storage_uri="gs://bucket/models/iris/")
    strict(docs)
    pod = docs[0]["spec"]["template"]["spec"]
    (fetch,) = pod["initContainers"]
    assert fetch["image"] == DEFAULT_SERVING_IMAGE
    assert fetch["command"][-2:] == ["gs://bucket/models/iris/", "/mnt/models"]
    assert "nvidia.com/gpu" not in fetch["resources"]["limits"]  # only the server needs it
    assert pod["volumes"] == [{"name": "model", "emptyDir": {}}]
    server = pod["containers"][0]
    assert server["command"][server["command"].index("--model") + 1] == "/mnt/models"
    assert server["command"][-2:] == ["--predictor", "predictor:Model"]
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_the_fetch_step_copies_files_and_folders(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "model.joblib").write_text("m")
    (source / "sub" / "extra.txt").write_text("x")
    for uri, want in [
        (source.as_uri(), {"model.joblib", "sub/extra.txt"}),
        ((source / "model.joblib").as_uri(), {"model.joblib"}),
    ]:
        dest = tmp_path / f"dest-{len(want)}"
        dest.mkdir()
        command = model_source(uri, image="x").init_containers[0]["command"]
        assert command[0] == "python" and command[-1] == "/mnt/models"
        subprocess.run([sys.executable, *command[1:-1], str(dest)], check=True, timeout=60)
        found = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
        assert found == want


def test_plain_main_service_follows_the_version_with_all_traffic() -> None:
    spec = spec_of(version="v2", traffic={"v1": 100, "v2": 0})
    docs = plain_manifests(spec, NS, storage_uri=URI, deployed_versions=["v1"])
    strict(docs)
    assert docs[0]["metadata"]["name"] == "iris-v2"
    assert docs[2]["spec"]["selector"]["cloudml.io/version"] == "v1"
    assert main_service("iris", NS, "v2")["spec"]["selector"]["cloudml.io/version"] == "v2"


def test_plain_refuses_a_weighted_split() -> None:
    spec = spec_of(version="v2", traffic={"v1": 90, "v2": 10})
    with pytest.raises(Unsupported, match=r"v1=90,v2=10 needs a weighted split.*--engine kserve"):
        plain_manifests(spec, NS, storage_uri=URI, deployed_versions=["v1"])
    with pytest.raises(InvalidSpec, match=r"names v1, which is not deployed"):
        plain_manifests(spec_of(version="v2", traffic={"v1": 100, "v2": 0}), NS, storage_uri=URI)


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("9-lives", "v1"),
        ("a" * 40, "v1"),
        ("b" * 40, "2024.06.01-release.candidate.10"),
        ("model-x", "1.0"),
    ],
)
def test_odd_names_make_valid_object_names(name: str, version: str) -> None:
    spec = spec_of(name=name, version=version)
    docs = plain_manifests(spec, NS, storage_uri=URI)
    strict(docs)
    names = [d["metadata"]["name"] for d in docs]
    assert names[0] == names[1] != names[2]
    assert docs[0]["metadata"]["labels"]["cloudml.io/version"] == version
    other = plain_manifests(spec_of(name=name, version=version + "1"), NS, storage_uri=URI)
    assert other[0]["metadata"]["name"] != names[0]  # versions never share a name
    service = isvc(spec)
    assert service["metadata"]["name"] == names[2]
    assert DNS_1035.match(names[2]) and len(names[2]) <= DEPLOYMENT_NAME_MAX


# --- model locations --------------------------------------------------------------------------


def test_model_storage_uris() -> None:
    assert model_storage_uri("job:iris-3f9a1c/model.joblib", shared=SHARED) == URI
    assert model_storage_uri("job:iris-3f9a1c", shared=SHARED) == (
        "pvc://cloudml-shared/jobs/iris-3f9a1c/job_dir"
    )
    assert (
        model_storage_uri("job:j1/out//m.onnx", shared=None, job_dir="s3://bucket/run1/")
        == "s3://bucket/run1/out/m.onnx"
    )
    assert model_storage_uri("/mnt/cloudml/models/m.bst", shared=SHARED) == (
        "pvc://cloudml-shared/models/m.bst"
    )
    for uri in ("gs://b/m/", "s3://b/m.onnx", "https://example.org/m.joblib", "pvc://c/a/b"):
        assert model_storage_uri(uri, shared=None) == uri
    assert parse_pvc_uri("pvc://claim.x/a/b/") == PvcLocation("claim.x", "a/b")


@pytest.mark.parametrize(
    ("model", "shared", "message"),
    [
        ("./model.joblib", SHARED, "a path the cluster cannot read"),
        ("/home/me/model.joblib", SHARED, "a path the cluster cannot read"),
        ("/mnt/cloudmlx/m.joblib", SHARED, "a path the cluster cannot read"),
        ("ftp://host/m", SHARED, r"reads models from pvc://, gs://, s3://, https:// or job:ID"),
        ("job:abc/../../etc/passwd", SHARED, "points outside the job's job dir"),
        ("job:abc/m.joblib", None, "none is configured"),
        ("job:", SHARED, "give job:JOB_ID"),
        ("job:../m.joblib", SHARED, "give job:JOB_ID"),
        ("pvc://Bad_Claim/m", None, "not a PersistentVolumeClaim name"),
        ("pvc://claim/a/../b", None, "must not hold"),
    ],
)
def test_bad_model_locations(model: str, shared: SharedVolume | None, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        model_storage_uri(model, shared=shared)


def test_a_pvc_root_is_mounted_whole() -> None:
    source = model_source("pvc://models", image="x")
    assert source.path == "/mnt/models" and "subPath" not in source.mounts[0]


# --- TensorBoard ------------------------------------------------------------------------------


def test_tensorboard_manifests() -> None:
    jobs = ["mnist-3f9a1c", "mnist-0b12aa"]
    tb_id = tensorboard_id(jobs)
    logdirs = {job: f"/mnt/cloudml/jobs/{job}/job_dir" for job in jobs}
    docs = tensorboard_manifests(
        tb_id, logdirs, NS, image="tensorflow/tensorflow:2.16.1", claim="cloudml-shared"
    )
    strict(docs)
    deployment, service = docs
    assert deployment["kind"] == "Deployment" and service["kind"] == "Service"
    assert deployment["metadata"]["name"] == service["metadata"]["name"] == tb_id
    labels = {"app.kubernetes.io/managed-by": "jupyter-cloudml", "cloudml.io/tensorboard": tb_id}
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert service["spec"]["selector"] == labels
    for doc in docs:
        assert annotation(doc, k8s_labels.JOBS_ANNOTATION) == sorted(jobs)
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    spec = ",".join(f"{job}:{logdirs[job]}" for job in sorted(jobs))
    assert container["command"] == [
        "tensorboard",
        "--logdir_spec",
        spec,
        "--bind_all",
        "--port",
        "6006",
        "--path_prefix=",
    ]
    assert container["readinessProbe"]["httpGet"] == {"path": "/", "port": "http", "scheme": "HTTP"}
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert pod["volumes"][0]["persistentVolumeClaim"] == {
        "claimName": "cloudml-shared",
        "readOnly": True,
    }
    assert container["volumeMounts"] == [
        {"name": "shared", "mountPath": "/mnt/cloudml", "readOnly": True}
    ]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 6006, "targetPort": "http", "protocol": "TCP"}
    ]
    # Object storage needs no volume; an odd id still makes a valid name.
    docs = tensorboard_manifests("TB odd", {"a": "gs://b/a"}, NS, image="tb", claim=None)
    strict(docs)
    assert "volumes" not in docs[0]["spec"]["template"]["spec"]


def test_tensorboard_ids_are_shared_with_the_local_backend() -> None:
    from jupyter_cloudml.backends.local import tensorboards as local

    ids = ["b-2", "a-1", "b-2"]
    assert tensorboard_id(ids) == tensorboard_id(["a-1", "b-2"]) == local.tensorboard_id(ids)
    assert re.fullmatch(r"tb-[0-9a-f]{12}", tensorboard_id(ids))
    assert local.ID_RE.match(tensorboard_id(ids))


@pytest.mark.parametrize("logdirs", [{}, {"a:b": "/x"}, {"a": "/x,y"}, {"a": ""}])
def test_tensorboard_bad_logdirs(logdirs: dict[str, str]) -> None:
    with pytest.raises(InvalidSpec):
        tensorboard_manifests("tb-1", logdirs, NS, image="tb", claim=None)


def test_selectors() -> None:
    assert k8s_labels.deployment_selector("iris") == (
        "app.kubernetes.io/managed-by=jupyter-cloudml,cloudml.io/deployment=iris"
    )
