"""Models back into flags: the `train` flags and the cell that reproduce a job or a study
("copy the magic")."""

from __future__ import annotations

from ..models import (
    Algorithm,
    EarlyStopping,
    Framework,
    Goal,
    Resources,
    TrainSpec,
    TuningSpec,
)

#: Labels the platform sets itself; a reproduced job gets fresh ones.
SYSTEM_LABEL_PREFIX = "cloudml.io/"


def resource_text(res: Resources) -> str:
    """`cpu:4,memory:16Gi,gpus:1,gpu-type:t4`, as `--resources ROLE=` takes it."""
    items = [f"cpu:{res.cpu:g}", f"gpus:{res.gpus}"]
    items += [f"memory:{res.memory}"] if res.memory else []
    items += [f"gpu-type:{res.gpu_type}"] if res.gpu_type else []
    return ",".join(items)


def train_flags(spec: TrainSpec) -> list[str]:
    """The `train` flags that describe `spec` (defaults left out); trainer args after '--'."""
    flags = ["--name", spec.name]
    if spec.framework is not Framework.GENERIC:
        flags += ["--framework", spec.framework.value]
    if spec.replicas.workers != 1:
        flags += ["--workers", str(spec.replicas.workers)]
    if spec.replicas.ps:
        flags += ["--ps", str(spec.replicas.ps)]
    elif spec.replicas.chief:
        flags.append("--chief")
    if spec.replicas.evaluators:
        flags += ["--evaluators", str(spec.replicas.evaluators)]
    if spec.tf_chief_name == "master":
        flags.append("--tf-master")
    defaults = Resources()
    for flag, value, default in [
        ("--cpu", spec.resources.cpu, defaults.cpu),
        ("--memory", spec.resources.memory, defaults.memory),
        ("--gpus", spec.resources.gpus, defaults.gpus),
        ("--gpu-type", spec.resources.gpu_type, defaults.gpu_type),
        ("--retries", spec.retries, 0),
        ("--timeout", spec.timeout, None),
        ("--max-wait", spec.max_wait, None),
        ("--service-account", spec.service_account, None),
        ("--notify", spec.notify, None),
        ("--job-dir", spec.job_dir, None),
        ("--pre-command", spec.pre_command, None),
        ("--post-command", spec.post_command, None),
        ("--image", spec.image, None),
        ("--python", spec.python, None),
    ]:
        if value != default:
            flags += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    labels = {k: v for k, v in spec.labels.items() if not k.startswith(SYSTEM_LABEL_PREFIX)}
    for flag, pairs in [
        ("--env", spec.env),
        ("--label", labels),
        ("--node-selector", spec.node_selector),
        ("--role-image", spec.role_images),
    ]:
        for key, value in pairs.items():
            flags += [flag, f"{key}={value}"]
    for role, res in spec.role_resources.items():
        flags += ["--resources", f"{role}={resource_text(res)}"]
    for name in spec.secrets:  # the value is nowhere in the record: taken from where it runs
        flags += ["--secret", name]
    for requirement in spec.package.requirements:
        flags += ["--pip", requirement]
    if spec.returns:
        flags += ["--return", ",".join(spec.returns)]
    args = list(spec.args)
    if spec.job_dir and args[-2:] == ["--job-dir", spec.job_dir]:
        args = args[:-2]  # added by --job-dir itself
    return flags + (["--", *args] if args else [])


def reproduce_magic(spec: TrainSpec, cell: str | None) -> str:
    """A notebook cell that submits this job again: `%%cloudml_train FLAGS` and the code."""
    return _submission(train_flags(spec), spec, cell)


def _submission(flags: list[str], spec: TrainSpec, cell: str | None) -> str:
    """`%%cloudml_train FLAGS` over `cell`; without a cell, the `%cloudml train` of a package."""
    import shlex

    if cell is None:
        flags[2:2] = ["--module", spec.package.module, "--package-path", "PATH/TO/PACKAGE"]
        return "%cloudml train " + shlex.join(flags)
    return f"%%cloudml_train {shlex.join(flags)}\n{cell}"


def tuning_flags(tuning: TuningSpec) -> list[str]:
    """The `train` flags that make a job the study `tuning` (defaults left out)."""
    from ..tuning.space import param_to_text

    flags: list[str] = []
    for param in tuning.params:
        flags += ["--param", param_to_text(param)]
    flags += ["--metric", tuning.metric]
    defaults = TuningSpec(params=tuning.params, metric=tuning.metric)
    for flag, value, default in [
        ("--goal", tuning.goal, Goal.MAXIMIZE),
        ("--trials", tuning.max_trials, defaults.max_trials),
        ("--parallel", tuning.parallel_trials, defaults.parallel_trials),
        ("--max-failed-trials", tuning.max_failed_trials, None),
        ("--algorithm", tuning.algorithm, Algorithm.TPE),
        ("--early-stopping", tuning.early_stopping, EarlyStopping.NONE),
        ("--seed", tuning.seed, None),
        ("--resume", tuning.resume_from, None),
    ]:
        if value != default:
            text = value.value if isinstance(value, (Goal, Algorithm, EarlyStopping)) else value
            flags += [flag, str(text).lower() if flag == "--goal" else str(text)]
    return flags


def reproduce_study_magic(template: TrainSpec, tuning: TuningSpec, cell: str | None) -> str:
    """A notebook cell that starts this study again: the trials' flags, then the tuning's."""
    flags = train_flags(template)
    cut = flags.index("--") if "--" in flags else len(flags)
    flags[cut:cut] = tuning_flags(tuning)
    return _submission(flags, template, cell)
