"""Google AI Platform's `config.yaml`: the whole `trainingInput` (`gcloud ai-platform jobs
submit training --config`) as TrainSpec and TuningSpec fields.

Every field ends up in one of three verdicts, listed by `--dry-run` (`Note`): honoured as it
is, mapped (a machine type to CPUs, memory and GPUs; a scale tier to its machines), or
ignored because it means nothing here (`region`); what cannot be honoured (a TPU, a customer
encryption key) is refused with the reason, and a mistake (an unknown key, a wrong type, a
negative count) is refused naming the field path, before anything is submitted.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, NoReturn

from ..exceptions import InvalidSpec
from ..models import Resources
from ..packaging.config_yaml import FieldReader, describe_value, parse_strict_yaml, read_config
from .machine_types import accelerator_gpu_type, machine_resources

#: The roles of a trainingInput: (its name there, our role).
ROLE_FIELDS = (
    ("master", "chief"),
    ("worker", "worker"),
    ("parameterServer", "ps"),
    ("evaluator", "evaluator"),
)
#: The machines of each predefined scale tier: role -> (machine type, count), as Google's
#: documentation gives them.
SCALE_TIERS: dict[str, dict[str, tuple[str, int]]] = {
    "BASIC": {"chief": ("standard", 1)},
    "BASIC_GPU": {"chief": ("standard_gpu", 1)},
    "STANDARD_1": {
        "chief": ("n1-highcpu-8", 1),
        "worker": ("n1-highcpu-8", 4),
        "ps": ("n1-standard-4", 3),
    },
    "PREMIUM_1": {
        "chief": ("n1-highcpu-16", 1),
        "worker": ("n1-highcpu-16", 19),
        "ps": ("n1-highmem-8", 11),
    },
}
TRAINING_INPUT_KEYS = (
    "scaleTier",
    *(f"{name}{suffix}" for name, _ in ROLE_FIELDS for suffix in ("Type", "Config")),
    *(f"{name}Count" for name, _ in ROLE_FIELDS if name != "master"),
    "useChiefInTfConfig",
    "packageUris",
    "pythonModule",
    "args",
    "hyperparameters",
    "region",
    "jobDir",
    "runtimeVersion",
    "pythonVersion",
    "scheduling",
    "serviceAccount",
    "network",
    "encryptionConfig",
    "enableWebAccess",
)
REPLICA_CONFIG_KEYS = (
    "acceleratorConfig",
    "imageUri",
    "containerCommand",
    "containerArgs",
    "tpuTfVersion",
    "diskConfig",
)
#: Fields that mean nothing on this platform, with what to say about them.
IRRELEVANT = {
    "region": "there are no regions here: the job runs on the configured backend",
    "network": "no VPC peering here: replicas reach what the backend's network reaches",
    "enableWebAccess": "no interactive shell into replicas: follow them with `jobs logs`",
}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


@dataclasses.dataclass(frozen=True)
class Note:
    """What became of one field of the config: honoured, mapped or ignored."""

    path: str
    verdict: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}: {self.verdict}: {self.text}"


@dataclasses.dataclass
class TrainingConfig:
    """A config's TrainSpec fields (only those it sets), its study, and a note per field."""

    spec: dict[str, Any] = dataclasses.field(default_factory=dict)
    tuning: dict[str, Any] | None = None
    notes: list[Note] = dataclasses.field(default_factory=list)

    def note(self, path: str, verdict: str, text: str) -> None:
        self.notes.append(Note(path, verdict, text))


def load_training_config(path: str | Path, shown_as: str | None = None) -> TrainingConfig:
    """Read `config.yaml` (a `trainingInput` at the top, under `trainingInput:`, or the whole
    `Job` with `jobId` and `labels`); messages call the file `shown_as` (as the user gave it)."""
    name, text = read_config(path, "<config>")
    name = shown_as or name
    data = parse_strict_yaml(name, text)
    reader = FieldReader(name)
    if not isinstance(data, dict):
        raise InvalidSpec(
            f"{name}: expected a mapping with trainingInput, got {describe_value(data)}"
        )
    config = TrainingConfig()
    if "trainingInput" in data:
        job = reader.mapping(data, "", ("jobId", "labels", "trainingInput"))
        _job_fields(reader, job, config)
        training, prefix = job["trainingInput"], "trainingInput"
    else:
        training, prefix = data, ""
    training = reader.mapping(training, prefix or "(top)", TRAINING_INPUT_KEYS)
    _TrainingInput(reader, training, prefix, config).read()
    return config


def _job_fields(reader: FieldReader, job: dict[str, Any], config: TrainingConfig) -> None:
    if "jobId" in job:
        from ..models import slugify

        job_id = reader.string(job["jobId"], "jobId")
        config.spec["name"] = slugify(job_id)
        config.note("jobId", "mapped", f"the job's name {config.spec['name']!r}")
    if "labels" in job:
        labels = reader.mapping(job["labels"], "labels", [str(k) for k in job["labels"] or {}])
        config.spec["labels"] = {str(k): str(v) for k, v in labels.items()}
        config.note("labels", "honoured", ", ".join(f"{k}={v}" for k, v in labels.items()))


class _TrainingInput:
    """Reads one trainingInput mapping into `config`."""

    def __init__(
        self, reader: FieldReader, data: dict[str, Any], prefix: str, config: TrainingConfig
    ) -> None:
        self.reader, self.data, self.config = reader, data, config
        self.prefix = f"{prefix}." if prefix else ""

    def path(self, key: str) -> str:
        return self.prefix + key

    def fail(self, key: str, message: str) -> NoReturn:
        self.reader.fail(self.path(key), message)

    def read(self) -> None:
        self._machines()
        self._code()
        self._runtime()
        self._scheduling()
        self._identity()
        for key, why in IRRELEVANT.items():
            if key in self.data:
                self.config.note(self.path(key), "ignored", why)
        if "encryptionConfig" in self.data:
            self.fail("encryptionConfig", "customer-managed encryption keys are not available here")
        if "hyperparameters" in self.data:
            from ..tuning.hptuning_config import HYPERPARAMETER_KEYS, tuning_fields

            section = self.reader.mapping(
                self.data["hyperparameters"], self.path("hyperparameters"), HYPERPARAMETER_KEYS
            )
            self.config.tuning = tuning_fields(self.reader, section, self.path("hyperparameters"))
            self.config.note(self.path("hyperparameters"), "honoured", "the job is a study")

    # --- machines ------------------------------------------------------------------------------

    def _machines(self) -> None:
        tier = self.reader.choice(
            self.data.get("scaleTier", "BASIC"),
            self.path("scaleTier"),
            {t: t for t in (*SCALE_TIERS, "CUSTOM", "BASIC_TPU")},
        )
        if tier == "BASIC_TPU":
            self.fail("scaleTier", "BASIC_TPU needs a Cloud TPU, and there are no TPUs here")
        machines: dict[str, tuple[Resources, int]] = {}
        if tier == "CUSTOM":
            if "masterType" not in self.data:
                self.fail("masterType", "missing: scaleTier CUSTOM needs a masterType")
        else:
            for name, _ in ROLE_FIELDS:
                for suffix in ("Type", "Count"):
                    if f"{name}{suffix}" in self.data:
                        self.fail(f"{name}{suffix}", f"given with scaleTier {tier}: use CUSTOM")
            for role, (machine, count) in SCALE_TIERS[tier].items():
                machines[role] = (machine_resources(machine), count)
            described = ", ".join(f"{n} x {m} ({r})" for r, (m, n) in SCALE_TIERS[tier].items())
            self.config.note(self.path("scaleTier"), "mapped", f"{tier}: {described}")
        for name, role in ROLE_FIELDS:
            self._role(name, role, machines)
        self._place(machines)

    def _role(self, name: str, role: str, machines: dict[str, tuple[Resources, int]]) -> None:
        type_key, count_key, config_key = f"{name}Type", f"{name}Count", f"{name}Config"
        count = 1 if role == "chief" else 0
        if count_key in self.data:
            count = self._count(count_key)
            if count and type_key not in self.data:
                self.fail(count_key, f"{count} {name} replica(s) need a {type_key}")
        if type_key in self.data:
            machine = self.reader.string(self.data[type_key], self.path(type_key))
            try:
                res = machine_resources(machine)
            except InvalidSpec as error:
                self.fail(type_key, str(error))
            if role != "chief" and count_key not in self.data:
                self.fail(count_key, f"missing: how many {name} replicas of {machine}")
            machines[role] = (res, count)
            self.config.note(self.path(type_key), "mapped", f"{machine}: {_describe(res)}")
        if config_key in self.data:
            if role not in machines or not machines[role][1]:
                self.fail(config_key, f"the job has no {name} replica to configure")
            res, count = machines[role]
            machines[role] = (self._replica_config(config_key, role, res), count)

    def _count(self, key: str) -> int:
        return _int64(self.reader, self.data[key], self.path(key))

    def _replica_config(self, key: str, role: str, res: Resources) -> Resources:
        path = self.path(key)
        data = self.reader.mapping(self.data[key], path, REPLICA_CONFIG_KEYS)
        for refused, why in (
            ("containerCommand", "the image's own entrypoint is not used: the package runs"),
            ("containerArgs", "give the trainer's arguments as args"),
            ("tpuTfVersion", "there are no TPUs here"),
        ):
            if refused in data:
                self.reader.fail(f"{path}.{refused}", f"not supported: {why}")
        if "diskConfig" in data:
            self.config.note(f"{path}.diskConfig", "ignored", "no boot disks here")
        if "imageUri" in data:
            image = self.reader.string(data["imageUri"], f"{path}.imageUri")
            self.config.spec.setdefault("role_images", {})[role] = image
            self.config.note(f"{path}.imageUri", "honoured", f"{role} replicas run {image}")
        if "acceleratorConfig" in data:
            accel_path = f"{path}.acceleratorConfig"
            accel = self.reader.mapping(data["acceleratorConfig"], accel_path, ("count", "type"))
            for needed in ("count", "type"):
                if needed not in accel:
                    self.reader.fail(f"{accel_path}.{needed}", "missing")
            gpus = _int64(self.reader, accel["count"], f"{accel_path}.count")
            kind = self.reader.string(accel["type"], f"{accel_path}.type")
            try:
                gpu_type = accelerator_gpu_type(kind)
            except InvalidSpec as error:
                self.reader.fail(f"{accel_path}.type", str(error))
            res = dataclasses.replace(res, gpus=gpus, gpu_type=gpu_type if gpus else None)
            self.config.note(accel_path, "mapped", f"{gpus} x {kind} ({gpu_type})")
        return res

    def _place(self, machines: dict[str, tuple[Resources, int]]) -> None:
        """Replica counts, every role's resources, and TF_CONFIG's name for the chief."""
        from ..models import Replicas

        counts = {role: count for role, (_, count) in machines.items()}
        self.config.spec["replicas"] = Replicas(
            chief=counts.get("chief", 1),
            workers=counts.get("worker", 0),
            ps=counts.get("ps", 0),
            evaluators=counts.get("evaluator", 0),
        )
        self.config.spec["role_resources"] = {
            role: res for role, (res, count) in machines.items() if count
        }
        chief = self.data.get("useChiefInTfConfig", False)
        chief = self.reader.boolean(chief, self.path("useChiefInTfConfig"))
        self.config.spec["tf_chief_name"] = "chief" if chief else "master"
        if "useChiefInTfConfig" in self.data:
            named = "chief" if chief else "master"
            self.config.note(self.path("useChiefInTfConfig"), "honoured", f"TF_CONFIG says {named}")

    # --- code, runtime, limits ---------------------------------------------------------------

    def _code(self) -> None:
        if "pythonModule" in self.data:
            module = self.reader.string(self.data["pythonModule"], self.path("pythonModule"))
            self.config.spec["module"] = module
            self.config.note(self.path("pythonModule"), "honoured", f"python -m {module}")
        if "args" in self.data:
            items = self.data["args"]
            if not isinstance(items, list):
                self.fail("args", f"expected a list of strings, got {describe_value(items)}")
            args = []
            for i, item in enumerate(items):
                if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                    self.reader.fail(
                        f"{self.path('args')}[{i}]",
                        f"expected a string, got {describe_value(item)}",
                    )
                args.append(str(item))
            self.config.spec["args"] = tuple(args)
            self.config.note(self.path("args"), "honoured", " ".join(args))
        if "jobDir" in self.data:
            job_dir = self.reader.string(self.data["jobDir"], self.path("jobDir"))
            self.config.spec["job_dir"] = job_dir
            self.config.note(self.path("jobDir"), "honoured", f"--job-dir {job_dir}")
        if "packageUris" in self.data:
            uris = self.data["packageUris"]
            if not isinstance(uris, list) or not all(isinstance(u, str) and u for u in uris):
                self.fail(
                    "packageUris", f"expected a list of paths or URIs, got {describe_value(uris)}"
                )
            self.config.spec["packages"] = tuple(uris)
            self.config.spec["packages_given_as"] = (
                f"{self.reader.name}: {self.path('packageUris')}"
            )
            self.config.note(
                self.path("packageUris"), "honoured", "installed before the module runs"
            )

    def _runtime(self) -> None:
        for key in ("runtimeVersion", "pythonVersion"):
            if key in self.data:
                value = self.data[key]
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    value = str(value)
                value = self.reader.string(value, self.path(key))
                self.config.spec.setdefault("runtime", {})[key] = value
        runtime = self.config.spec.pop("runtime", {})
        if runtime:
            from ..config import runtime_image

            versions = ", ".join(f"{k} {v}" for k, v in runtime.items())
            image = runtime_image(runtime.get("runtimeVersion"), runtime.get("pythonVersion"))
            first = self.path(next(iter(runtime)))
            if image is None:
                self.config.note(
                    first,
                    "ignored",
                    f"{versions}: no image is configured for it "
                    "(c.CloudML.runtime_images), so the backend's own runs the job",
                )
            else:
                self.config.spec["image"] = image
                self.config.note(first, "mapped", f"{versions}: image {image}")

    def _scheduling(self) -> None:
        if "scheduling" not in self.data:
            return
        path = self.path("scheduling")
        data = self.reader.mapping(
            self.data["scheduling"], path, ("maxRunningTime", "maxWaitTime", "priority")
        )
        for key, field in (("maxRunningTime", "timeout"), ("maxWaitTime", "max_wait")):
            if key in data:
                seconds = _seconds(self.reader, data[key], f"{path}.{key}")
                self.config.spec[field] = seconds
                self.config.note(f"{path}.{key}", "honoured", f"{seconds:g} s")
        if "priority" in data:
            self.config.note(f"{path}.priority", "ignored", "jobs here start in submit order")

    def _identity(self) -> None:
        if "serviceAccount" in self.data:
            account = self.reader.string(self.data["serviceAccount"], self.path("serviceAccount"))
            self.config.spec["service_account"] = account
            self.config.note(
                self.path("serviceAccount"),
                "honoured",
                f"on Kubernetes the pods run as ServiceAccount {account}",
            )


def _int64(reader: FieldReader, value: Any, path: str) -> int:
    """A count >= 0, also as the REST API writes an int64: as text (`workerCount: "3"`)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return reader.whole(value, path, 0)


def _seconds(reader: FieldReader, value: Any, path: str) -> float:
    """A protobuf Duration as YAML gives it: `7200s` (or a bare number of seconds)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(str(value).strip()) if isinstance(value, str) else None
    if match is None or float(match[1]) <= 0:
        reader.fail(path, f"expected a duration like '7200s', got {describe_value(value)}")
    return float(match[1])


def _describe(res: Resources) -> str:
    text = f"{res.cpu:g} CPU, {res.memory} memory"
    return text + (f", {res.gpus} x {res.gpu_type} GPU" if res.gpus else "")
