"""Google AI Platform's `config.yaml` (`--config`): every trainingInput field honoured, mapped,
ignored with a note or refused with the field path, flags over the file as gcloud has them."""

from __future__ import annotations

import contextlib
import json
import re
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_cloudml.commands.ai_platform import TRAINING_INPUT_KEYS, load_training_config
from jupyter_cloudml.commands.grammar import parse_command
from jupyter_cloudml.commands.machine_types import machine_resources
from jupyter_cloudml.commands.runners import config_notes
from jupyter_cloudml.commands.study_flags import build_tuning_spec
from jupyter_cloudml.commands.train_spec import build_train_spec
from jupyter_cloudml.exceptions import InvalidSpec
from jupyter_cloudml.models import Framework, Goal, Replicas, Resources

#: The configs Google's samples ship (cloudml-samples census/estimator, the hptuning guide).
CENSUS_DISTRIBUTED = """
trainingInput:
  scaleTier: CUSTOM
  masterType: complex_model_m
  workerType: complex_model_m
  parameterServerType: large_model
  workerCount: 2
  parameterServerCount: 1
  evaluatorType: standard
  evaluatorCount: 1
"""
HPTUNING = """
trainingInput:
  scaleTier: STANDARD_1
  hyperparameters:
    goal: MAXIMIZE
    hyperparameterMetricTag: accuracy
    maxTrials: 4
    maxParallelTrials: 2
    enableTrialEarlyStopping: true
    params:
      - parameterName: first-layer-size
        type: INTEGER
        minValue: 50
        maxValue: 500
        scaleType: UNIT_LINEAR_SCALE
"""
GPU_CUSTOM = """
trainingInput:
  scaleTier: CUSTOM
  masterType: n1-highmem-16
  masterConfig:
    acceleratorConfig:
      count: 2
      type: NVIDIA_TESLA_T4
    imageUri: gcr.io/my-project/trainer:gpu
  workerType: a2-highgpu-1g
  workerCount: "3"
  useChiefInTfConfig: true
  pythonModule: trainer.task
  args: ["--epochs", 10, "--lr", 0.01]
  jobDir: /data/run1
  region: us-central1
  scheduling:
    maxRunningTime: 3600s
    maxWaitTime: 600s
  serviceAccount: trainer-sa
"""


@pytest.fixture
def trainer(tmp_path: Path) -> Path:
    package = tmp_path / "trainer"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "task.py").write_text("print('training')\n")
    return tmp_path


def config_file(folder: Path, text: str, name: str = "config.yaml") -> str:
    (folder / name).write_text(textwrap.dedent(text))
    return name


def build(folder: Path, text: str, *flags: str):
    name = config_file(folder, text)
    ns = parse_command(["train", "--package-path", "trainer", "--config", name, *flags])
    if ns.module is None and "pythonModule" not in text:
        ns.module = "trainer.task"
    return build_train_spec(ns, cell=None, source_dir=folder, user_ns=None), ns


def test_googles_distributed_census_config_maps_every_role(trainer: Path) -> None:
    spec, ns = build(trainer, CENSUS_DISTRIBUTED)
    assert spec.framework is Framework.TENSORFLOW  # AI Platform sets TF_CONFIG on every job
    assert spec.replicas == Replicas(chief=1, workers=2, ps=1, evaluators=1)
    assert spec.tf_chief_name == "master"  # useChiefInTfConfig defaults to false
    complex_model_m = Resources(cpu=16, memory="14746Mi")
    assert spec.resources_of("chief") == spec.resources_of("worker") == complex_model_m
    assert spec.resources_of("ps") == Resources(cpu=8, memory="52Gi")
    assert spec.resources_of("evaluator") == Resources(cpu=4, memory="15Gi")
    notes = [str(n) for n in config_notes(ns, str(trainer))]
    assert "trainingInput.masterType: mapped: complex_model_m: 16 CPU, 14746Mi memory" in notes
    assert len(notes) == 4  # one per field the file gives (scaleTier CUSTOM says nothing more)


def test_gpus_images_counts_as_text_and_the_other_fields(trainer: Path) -> None:
    spec, ns = build(trainer, GPU_CUSTOM)
    assert spec.replicas == Replicas(chief=1, workers=3)
    assert spec.resources_of("chief") == Resources(cpu=16, memory="104Gi", gpus=2, gpu_type="t4")
    assert spec.resources_of("worker") == Resources(
        cpu=12, memory="85Gi", gpus=1, gpu_type="a100-40gb"
    )
    assert spec.role_images == {"chief": "gcr.io/my-project/trainer:gpu"}
    assert spec.tf_chief_name == "chief"
    assert spec.package.module == "trainer.task"
    assert spec.args == ("--epochs", "10", "--lr", "0.01", "--job-dir", "/data/run1")
    assert (spec.job_dir, spec.timeout, spec.max_wait) == ("/data/run1", 3600.0, 600.0)
    assert spec.service_account == "trainer-sa"
    verdicts = {n.path: n.verdict for n in config_notes(ns, str(trainer))}
    assert verdicts["trainingInput.region"] == "ignored"
    assert verdicts["trainingInput.masterConfig.imageUri"] == "honoured"


def test_flags_override_the_file(trainer: Path) -> None:
    spec, _ = build(
        trainer,
        GPU_CUSTOM,
        "--workers", "1", "--gpus", "0", "--timeout", "10m", "--job-dir", "/data/run2",
        "--resources", "worker=cpu:2", "--", "--epochs", "1",
    )  # fmt: skip
    assert spec.replicas == Replicas(chief=1, workers=1)
    assert spec.resources_of("chief") == Resources(cpu=16, memory="104Gi")
    assert spec.resources_of("worker") == Resources(cpu=2)
    assert spec.args == ("--epochs", "1", "--job-dir", "/data/run2")
    assert spec.timeout == 600


@pytest.mark.parametrize(
    ("tier", "replicas", "chief"),
    [
        ("BASIC", Replicas(chief=1, workers=0), Resources(cpu=4, memory="15Gi")),
        (
            "BASIC_GPU",
            Replicas(chief=1, workers=0),
            Resources(cpu=8, memory="30Gi", gpus=1, gpu_type="k80"),
        ),
        ("STANDARD_1", Replicas(chief=1, workers=4, ps=3), Resources(cpu=8, memory="7373Mi")),
        ("PREMIUM_1", Replicas(chief=1, workers=19, ps=11), Resources(cpu=16, memory="14746Mi")),
    ],
)
def test_scale_tiers(trainer: Path, tier: str, replicas: Replicas, chief: Resources) -> None:
    spec, _ = build(trainer, f"trainingInput:\n  scaleTier: {tier}\n")
    assert spec.replicas == replicas and spec.resources_of("chief") == chief


def test_a_study_from_the_config(trainer: Path) -> None:
    name = config_file(trainer, HPTUNING)
    ns = parse_command(["train", "--package-path", "trainer", "--module", "t.m", "--config", name])
    tuning = build_tuning_spec(ns, trainer)
    assert tuning is not None and tuning.metric == "accuracy" and tuning.goal is Goal.MAXIMIZE
    assert (tuning.max_trials, tuning.parallel_trials) == (4, 2)
    ns = parse_command(["train", "--config", name, "--trials", "6"])
    assert build_tuning_spec(ns, trainer).max_trials == 6  # type: ignore[union-attr]
    both = parse_command(["train", "--config", name, "--hptuning-config", name])
    with pytest.raises(InvalidSpec, match="keep them in one file"):
        build_tuning_spec(both, trainer)


def test_a_whole_job_resource_with_its_id_and_labels(trainer: Path) -> None:
    spec, _ = build(
        trainer, "jobId: census_1\nlabels: {team: ads}\ntrainingInput:\n  scaleTier: BASIC\n"
    )
    assert spec.name == "census-1" and spec.labels == {"team": "ads"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "trainingInput:\n  scaleTeir: BASIC\n",
            "unknown key 'scaleTeir' (did you mean 'scaleTier'?)",
        ),
        ("trainingInput:\n  scaleTier: HUGE\n", "trainingInput.scaleTier: expected one of BASIC"),
        ("trainingInput:\n  scaleTier: BASIC_TPU\n", "there are no TPUs here"),
        ("trainingInput:\n  scaleTier: CUSTOM\n", "masterType: missing: scaleTier CUSTOM needs"),
        ("trainingInput:\n  masterType: standard\n", "given with scaleTier BASIC: use CUSTOM"),
        (
            "trainingInput: {scaleTier: CUSTOM, masterType: standard, workerCount: 2}\n",
            "trainingInput.workerCount: 2 worker replica(s) need a workerType",
        ),
        (
            "trainingInput: {scaleTier: CUSTOM, masterType: standard, workerType: standard,"
            " workerCount: -1}\n",
            "trainingInput.workerCount: expected a whole number >= 0, got -1",
        ),
        (
            "trainingInput: {scaleTier: CUSTOM, masterType: standard, workerType: standard}\n",
            "trainingInput.workerCount: missing: how many worker replicas of standard",
        ),
        (
            "trainingInput: {scaleTier: CUSTOM, masterType: mega_machine}\n",
            "trainingInput.masterType: unknown machine type 'mega_machine'",
        ),
        (
            "trainingInput: {scaleTier: CUSTOM, masterType: cloud_tpu}\n",
            "trainingInput.masterType: 'cloud_tpu' is a TPU machine, and there are no TPUs",
        ),
        (
            "trainingInput: {scaleTier: CUSTOM, masterType: standard, masterConfig:"
            " {acceleratorConfig: {count: 1, type: TPU_V3}}}\n",
            "masterConfig.acceleratorConfig.type: TPU_V3 is a TPU, and there are no TPUs here",
        ),
        (
            "trainingInput: {scaleTier: CUSTOM, masterType: standard, masterConfig:"
            " {acceleratorConfig: {count: 1, type: NVIDIA_TESLA_Z9}}}\n",
            "unknown accelerator type 'NVIDIA_TESLA_Z9' (known: NVIDIA_TESLA_K80",
        ),
        (
            "trainingInput: {scaleTier: CUSTOM, masterType: standard, masterConfig:"
            " {acceleratorConfig: {type: NVIDIA_TESLA_T4}}}\n",
            "masterConfig.acceleratorConfig.count: missing",
        ),
        (
            "trainingInput: {scaleTier: CUSTOM, masterType: standard, masterConfig:"
            " {containerCommand: [python]}}\n",
            "masterConfig.containerCommand: not supported",
        ),
        (
            "trainingInput: {workerConfig: {imageUri: x}}\n",
            "trainingInput.workerConfig: the job has no worker replica to configure",
        ),
        ("trainingInput: {encryptionConfig: {kmsKeyName: k}}\n", "encryption keys are not"),
        ("trainingInput: {packageUris: gs://b/t.tar.gz}\n", "packageUris: expected a list of"),
        (
            "trainingInput: {packageUris: [nowhere://b/t.tar.gz]}\n",
            "packageUris 'nowhere://b/t.tar.gz': cannot read it: Protocol not known: nowhere",
        ),
        ("trainingInput: {args: --epochs 3}\n", "trainingInput.args: expected a list of strings"),
        ("trainingInput: {scheduling: {maxRunningTime: 2h}}\n", "expected a duration like '7200s'"),
        ("trainingInput: {useChiefInTfConfig: yes please}\n", "expected true or false"),
        ("trainingInput: []\n", "trainingInput: expected a mapping, got a list"),
        ("- 1\n", "expected a mapping with trainingInput, got a list"),
        (
            "trainingInput:\n  scaleTier: BASIC\n  scaleTier: CUSTOM\n",
            "key 'scaleTier' is given twice",
        ),
        ("jobId: x\ntrainingInput: {}\nstate: RUNNING\n", "unknown key 'state'"),
    ],
)
def test_mistakes_name_the_field_before_anything_is_submitted(
    trainer: Path, text: str, message: str
) -> None:
    with pytest.raises(InvalidSpec) as info:
        build(trainer, text)
    assert message in str(info.value)
    assert str(info.value).startswith("config.yaml")


def test_the_machine_table() -> None:
    assert machine_resources("n1-standard-8") == Resources(cpu=8, memory="30Gi")
    assert machine_resources("n1-highcpu-16") == Resources(cpu=16, memory="14746Mi")
    assert machine_resources("e2-highmem-4") == Resources(cpu=4, memory="32Gi")
    assert machine_resources("complex_model_m_p100") == Resources(
        cpu=16, memory="60Gi", gpus=4, gpu_type="p100"
    )
    assert machine_resources("g2-standard-24").gpus == 2


def test_the_dry_run_lists_what_became_of_each_field(trainer: Path, capsys) -> None:
    from jupyter_cloudml.cli import main

    name = config_file(trainer, GPU_CUSTOM)
    argv = ["train", "--package-path", str(trainer / "trainer"), "--config", str(trainer / name)]
    assert main([*argv, "--dry-run", "--output", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {n["path"]: n["verdict"] for n in shown["config"]}["trainingInput.region"] == "ignored"
    assert shown["role_resources"]["worker"]["gpu_type"] == "a100-40gb"


CONFIG_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 30)
    | st.sampled_from(
        ["BASIC", "CUSTOM", "standard", "n1-standard-4", "NVIDIA_TESLA_T4", "7200s", "x", ""]
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from([*TRAINING_INPUT_KEYS, "count", "type", "imageUri", "bogus"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.dictionaries(st.sampled_from(TRAINING_INPUT_KEYS), CONFIG_VALUES, max_size=6))
def test_fuzz_the_loader(tmp_path: Path, body: dict) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump({"trainingInput": body}))
    with contextlib.suppress(InvalidSpec):  # any other exception fails the test
        load_training_config(path)


GOOGLE_TASK = """
import argparse, json, os, time
parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int)
parser.add_argument("--job-dir")
args = parser.parse_args()
tf_config = json.loads(os.environ["TF_CONFIG"])
task = tf_config["task"]
out = os.path.join(args.job_dir, f"{task['type']}-{task['index']}.json")
with open(out + ".tmp", "w") as f:
    json.dump({"tf_config": tf_config, "epochs": args.epochs}, f)
os.rename(out + ".tmp", out)
if task["type"] == "master":
    while len([n for n in os.listdir(args.job_dir) if n.endswith(".json")]) < 5:
        time.sleep(0.05)
else:
    time.sleep(120)  # parameter servers and evaluators are stopped once the master is done
"""


@pytest.mark.slow
def test_a_google_trainer_runs_unchanged_with_its_config(tmp_path: Path, capsys) -> None:
    """`gcloud ai-platform jobs submit training`'s command line, on the local backend: a
    master, 2 workers, a parameter server and an evaluator, each with Google's TF_CONFIG."""
    from jupyter_cloudml.backends.local import LocalBackend
    from jupyter_cloudml.cli import main
    from jupyter_cloudml.client import Client

    (tmp_path / "trainer").mkdir()
    (tmp_path / "trainer" / "__init__.py").write_text("")
    (tmp_path / "trainer" / "task.py").write_text(GOOGLE_TASK)
    config = config_file(tmp_path, CENSUS_DISTRIBUTED.replace("complex_model_m", "standard"))
    job_dir = tmp_path / "out"
    job_dir.mkdir()
    client = Client(LocalBackend(cpu_slots=32))
    code = main(
        [
            "train", "--package-path", str(tmp_path / "trainer"),
            "--module-name", "trainer.task", "--job-dir", str(job_dir),
            "--config", str(tmp_path / config), "--wait", "--", "--epochs", "3",
        ],
        client=client,
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    seen = {p.stem: json.loads(p.read_text()) for p in job_dir.glob("*.json")}
    assert sorted(seen) == ["evaluator-0", "master-0", "ps-0", "worker-0", "worker-1"]
    cluster = seen["master-0"]["tf_config"]["cluster"]
    assert sorted(cluster) == ["master", "ps", "worker"] and len(cluster["worker"]) == 2
    assert all(s["tf_config"]["cluster"] == cluster and s["epochs"] == 3 for s in seen.values())
    assert seen["evaluator-0"]["tf_config"]["environment"] == "cloud"
    (job,) = client.list().jobs
    assert job.spec is not None and job.spec.resources_of("ps") == Resources(cpu=8, memory="52Gi")


def build_wheel(folder: Path) -> Path:
    """A real wheel of a trainer package `gtrainer` (`gtrainer.task` prints where it runs)."""
    import subprocess
    import sys

    src = folder / "src"
    (src / "gtrainer").mkdir(parents=True)
    (src / "setup.py").write_text(
        "from setuptools import setup\n"
        "setup(name='gtrainer', version='0.1', packages=['gtrainer'])\n"
    )
    (src / "gtrainer" / "__init__.py").write_text("")
    (src / "gtrainer" / "task.py").write_text(
        "import sys, gtrainer\nprint('installed trainer', sys.argv[1:], flush=True)\n"
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         str(src), "-w", str(folder / "dist")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (wheel,) = (folder / "dist").glob("*.whl")
    return wheel


@pytest.mark.slow
def test_a_built_package_is_installed_before_its_module_runs(tmp_path: Path, capsys) -> None:
    from jupyter_cloudml.backends.local import LocalBackend
    from jupyter_cloudml.cli import main
    from jupyter_cloudml.client import Client

    wheel = build_wheel(tmp_path)
    client = Client(LocalBackend())
    argv = ["train", "--packages", str(wheel), "--module-name", "gtrainer.task", "--wait"]
    assert main([*argv, "--", "--epochs", "2"], client=client) == 0, capsys.readouterr()
    (job,) = client.list().jobs
    lines = [line.text for line in client.logs(job.id)]
    assert "installed trainer ['--epochs', '2']" in lines
    assert job.spec is not None
    assert job.spec.package.requirements == (f"_packages/{wheel.name}",)


def test_built_packages_are_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    for argv, message in [
        (["--packages", "missing.whl"], "missing.whl': cannot read it: No such file"),
        (["--packages", "notes.txt"], "not a built package (expected .tar.gz, .zip, .whl)"),
    ]:
        ns = parse_command(["train", *argv, "--module-name", "t.task"])
        with pytest.raises(InvalidSpec) as info:
            build_train_spec(ns, cell=None, source_dir=tmp_path, user_ns=None)
        assert message in str(info.value)


def test_the_pod_installs_the_built_package_before_the_module(tmp_path: Path) -> None:
    """The Kubernetes entrypoint, run here with the env its manifest gives the pod."""
    import os
    import subprocess
    import sys

    from jupyter_cloudml.backends.kubernetes.manifests.training import training_manifests

    wheel = build_wheel(tmp_path)
    ns = parse_command(["train", "--packages", str(wheel), "--module-name", "gtrainer.task"])
    spec = build_train_spec(ns, cell=None, source_dir=tmp_path, user_ns=None)
    (job,) = [d for d in training_manifests(spec, "g-1a2b3c", "ns") if d["kind"] == "Job"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    archive = tmp_path / "package.tar.gz"
    archive.write_bytes(spec.package.archive)
    env.update(
        CLOUDML_PACKAGE=str(archive),
        CLOUDML_WORKDIR=str(tmp_path / "work"),
        JOB_COMPLETION_INDEX="0",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter_cloudml.backends.kubernetes.entrypoint"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "installed trainer []" in proc.stdout


#: The shapes of the configs in Google's sample repositories (cloudml-samples: the templates'
#: BASIC, sklearn's STANDARD_1 with runtime versions, criteo's and reddit's CUSTOM clusters,
#: movielens' GPUs, the TPU samples), each with what it becomes here.
SAMPLE_SHAPES = [
    ("trainingInput:\n  scaleTier: BASIC\n", Replicas(chief=1, workers=0), None),
    (
        'trainingInput:\n  scaleTier: STANDARD_1\n  runtimeVersion: "1.13"\n'
        '  pythonVersion: "3.5"\n',
        Replicas(chief=1, workers=4, ps=3),
        None,
    ),
    (
        "trainingInput: {scaleTier: CUSTOM, masterType: large_model, workerType: complex_model_m,"
        " parameterServerType: large_model, workerCount: 60, parameterServerCount: 29}\n",
        Replicas(chief=1, workers=60, ps=29),
        None,
    ),
    ("trainingInput: {scaleTier: CUSTOM, masterType: complex_model_m}\n", Replicas(1, 0), None),
    (
        "trainingInput: {scaleTier: CUSTOM, masterType: standard_gpu, workerType: standard_gpu,"
        " parameterServerType: complex_model_s, workerCount: 2, parameterServerCount: 1}\n",
        Replicas(chief=1, workers=2, ps=1),
        "the job asks for 3 GPU(s) in all its replicas but this machine has 0",
    ),
    (
        "trainingInput: {scaleTier: CUSTOM, masterType: standard, workerCount: 1,"
        " workerType: cloud_tpu}\n",
        None,
        "trainingInput.workerType: 'cloud_tpu' is a TPU machine, and there are no TPUs here",
    ),
]


@pytest.mark.parametrize(("text", "replicas", "refusal"), SAMPLE_SHAPES)
def test_the_sample_repositories_configs_run_or_say_what_is_missing(
    trainer: Path, text: str, replicas: Replicas | None, refusal: str | None
) -> None:
    from jupyter_cloudml.backends.local import LocalBackend
    from jupyter_cloudml.exceptions import QuotaExceeded

    if replicas is None:
        with pytest.raises(InvalidSpec, match=re.escape(refusal or "")):
            build(trainer, text)
        return
    spec, ns = build(trainer, text)
    assert spec.replicas == replicas
    backend = LocalBackend(cpu_slots=2, gpu_ids=[])
    if refusal is None:
        job = backend.submit(spec)  # it fits this machine (CPUs are shared out), so it runs
        backend.cancel(job.id)
    else:
        with pytest.raises(QuotaExceeded, match=re.escape(refusal)):
            backend.submit(spec)
    ignored = [n for n in config_notes(ns, str(trainer)) if n.verdict == "ignored"]
    if "runtimeVersion" in text:
        assert [n.path for n in ignored] == ["trainingInput.runtimeVersion"]


@pytest.mark.slow
def test_a_cloud_ml_tarball_by_uri_runs_unchanged(tmp_path: Path, capsys) -> None:
    """Xiaomi cloud-ml's shape: a standard setup.py with trainer/task.py, built into a source
    tarball and submitted by URI; pip builds and installs it before trainer.task runs."""
    import subprocess
    import sys

    from jupyter_cloudml.backends.local import LocalBackend
    from jupyter_cloudml.cli import main
    from jupyter_cloudml.client import Client

    project = tmp_path / "project"
    (project / "trainer").mkdir(parents=True)
    (project / "setup.py").write_text(
        "from setuptools import setup, find_packages\n"
        "setup(name='trainer', version='0.1', packages=find_packages())\n"
    )
    (project / "trainer" / "__init__.py").write_text("")
    (project / "trainer" / "task.py").write_text("print('cloud-ml trainer ran', flush=True)\n")
    subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "dist")],
        cwd=project, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    uri = (tmp_path / "dist" / "trainer-0.1.tar.gz").as_uri()
    client = Client(LocalBackend())
    argv = ["train", "--packages", uri, "--module-name", "trainer.task", "--wait"]
    assert main(argv, client=client) == 0, capsys.readouterr()
    (job,) = client.list().jobs
    assert "cloud-ml trainer ran" in [line.text for line in client.logs(job.id)]
