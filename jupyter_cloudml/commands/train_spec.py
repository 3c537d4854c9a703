"""Parsed `train` flags (and a cell) into a `TrainSpec`, packaging the code they name; listing
flags into a `JobQuery`."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import InvalidSpec
from ..models import (
    CodePackage,
    Framework,
    JobQuery,
    Replicas,
    Resources,
    TrainSpec,
    slugify,
)

if TYPE_CHECKING:
    from .ai_platform import TrainingConfig


def build_job_query(ns: argparse.Namespace) -> JobQuery:
    """The `JobQuery` of a parsed `list` command."""
    return JobQuery(
        status=tuple(dict.fromkeys(s for group in ns.status for s in group)),
        name=ns.name,
        labels=dict(ns.label),
        limit=ns.limit,
        offset=ns.offset,
    )


def train_replicas(ns: argparse.Namespace, base: Replicas | None = None) -> Replicas:
    """Replica counts: the flags given, over `base` (a config's); TensorFlow parameter-server
    training gets a chief (its coordinator)."""
    framework = train_framework(ns, from_config=base is not None)
    base = base or Replicas()
    ps = base.ps if ns.ps is None else ns.ps
    tf_ps = framework is Framework.TENSORFLOW and ps > 0
    return Replicas(
        chief=1 if ns.chief or tf_ps else base.chief,
        workers=base.workers if ns.workers is None else ns.workers,
        ps=ps,
        evaluators=base.evaluators if ns.evaluators is None else ns.evaluators,
    )


def train_framework(ns: argparse.Namespace, from_config: bool) -> Framework:
    """--framework, else tensorflow for a Google config (AI Platform sets TF_CONFIG on every
    job), else generic."""
    if ns.framework:
        return Framework(ns.framework)
    return Framework.TENSORFLOW if from_config else Framework.GENERIC


def train_resources(ns: argparse.Namespace) -> Resources:
    """Per-replica resources; flags left out keep the model's defaults."""
    given = {"cpu": ns.cpu, "memory": ns.memory, "gpus": ns.gpus, "gpu_type": ns.gpu_type}
    return Resources(**{key: value for key, value in given.items() if value is not None})


def train_role_resources(ns: argparse.Namespace, every: Resources) -> dict[str, Resources]:
    """`--resources ROLE=...`: each role's own, starting from what every replica gets."""
    found: dict[str, Resources] = {}
    for role, fields in ns.resources:
        if role in found:
            raise InvalidSpec(f"--resources {role}=... is given twice: merge them into one")
        found[role] = _over(every, fields)
    return found


def _exports(ns: argparse.Namespace, user_ns: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not ns.export:
        return None
    if user_ns is None:
        raise InvalidSpec("--export ships notebook variables: use it in %%cloudml_train")
    for name in ns.export:
        if name not in user_ns:
            raise InvalidSpec(f"--export {name!r}: no variable named {name!r} in the notebook")
    return {name: user_ns[name] for name in ns.export}


def _trainer_args(
    ns: argparse.Namespace, from_file: tuple[str, ...] = (), job_dir: str | None = None
) -> tuple[str, ...]:
    """The trainer's arguments: those after `--` (which replace a config's `args`), and
    `--job-dir` as Google passes it."""
    args = tuple(ns.trainer_args) or tuple(from_file)
    job_dir = ns.job_dir or job_dir
    given = any(a == "--job-dir" or a.startswith("--job-dir=") for a in args)
    if job_dir and not given:
        args += ("--job-dir", job_dir)
    return args


def build_train_spec(
    ns: argparse.Namespace,
    *,
    cell: str | None,
    source_dir: str | Path,
    user_ns: Mapping[str, Any] | None,
) -> TrainSpec:
    """Package the code named by a parsed `train` command and describe the job to submit.

    `cell` is the notebook cell body (None from the CLI), `source_dir` the folder relative
    paths start from, `user_ns` the notebook's variables (None from the CLI: no --export/--return).
    With `--config`, the file's fields come first and the flags given override them.
    """
    from .template_flags import check_template_flags

    check_template_flags(ns)
    config = training_config(ns, source_dir)
    file: dict[str, Any] = config.spec if config else {}
    replicas = train_replicas(ns, file.get("replicas"))
    resources = train_resources(ns)
    if ns.returns and user_ns is None:
        raise InvalidSpec("--return brings variables back into a notebook: use %%cloudml_train")
    if ns.module is None and "module" in file:
        ns.module = file["module"]
    built_given_as = "--packages"
    if not ns.packages and "packages" in file:  # --packages replaces the config's packageUris
        ns.packages = [list(file["packages"])]
        built_given_as = file["packages_given_as"]
    template_args: tuple[str, ...] = ()
    if getattr(ns, "template", None):
        from .template_flags import template_code

        has_cell = cell is not None and bool(cell.strip())
        common = _common_package_options(ns, source_dir, built_given_as)
        package, default_name, template_args, template_labels = template_code(
            ns, source_dir, user_ns, common, has_cell
        )
        file = {**file, "labels": {**file.get("labels", {}), **template_labels}}
    else:
        package, default_name = _package(ns, cell, source_dir, user_ns, built_given_as)
    role_resources = _config_role_resources(ns, file.get("role_resources", {}), replicas)
    role_resources.update(train_role_resources(ns, resources))
    return TrainSpec(
        name=ns.name or file.get("name") or slugify(default_name),
        package=package,
        args=(*template_args, *_trainer_args(ns, file.get("args", ()), file.get("job_dir"))),
        env=dict(ns.env),
        secrets=train_secrets(ns, source_dir),
        framework=train_framework(ns, from_config=config is not None),
        replicas=replicas,
        resources=resources,
        role_resources=role_resources,
        image=ns.image or file.get("image"),
        role_images={**file.get("role_images", {}), **dict(ns.role_image)},
        tf_chief_name="master" if ns.tf_master else file.get("tf_chief_name", "chief"),
        python=ns.python,
        retries=ns.retries,
        timeout=ns.timeout if ns.timeout is not None else file.get("timeout"),
        max_wait=ns.max_wait if ns.max_wait is not None else file.get("max_wait"),
        job_dir=ns.job_dir or file.get("job_dir"),
        pre_command=ns.pre_command,
        post_command=ns.post_command,
        node_selector=dict(ns.node_selector),
        labels={**file.get("labels", {}), **dict(ns.label)},
        returns=tuple(ns.returns),
        service_account=ns.service_account or file.get("service_account"),
        notify=ns.notify,
    )


def _over(res: Resources, fields: Mapping[str, Any]) -> Resources:
    """`res` with `fields` set; `gpus: 0` alone also drops the GPU type (none without GPUs)."""
    if fields.get("gpus") == 0 and "gpu_type" not in fields:
        fields = {**fields, "gpu_type": None}
    return dataclasses.replace(res, **fields)


def training_config(ns: argparse.Namespace, source_dir: str | Path) -> TrainingConfig | None:
    """The `--config` file of a `train` command, read once per parsed command (the spec, the
    study and the notes all come from it); None without one."""
    if not getattr(ns, "config", None):
        return None
    loaded: TrainingConfig | None = getattr(ns, "_training_config", None)
    if loaded is None:
        from .ai_platform import load_training_config

        path = Path(os.path.join(source_dir, ns.config))
        loaded = ns._training_config = load_training_config(path, shown_as=ns.config)
    return loaded


def _config_role_resources(
    ns: argparse.Namespace, from_file: Mapping[str, Resources], replicas: Replicas
) -> dict[str, Resources]:
    """A config's machines for the roles the job has, under the every-role flags given
    (`--gpus 0` takes the GPUs off every machine)."""
    given = {"cpu": ns.cpu, "memory": ns.memory, "gpus": ns.gpus, "gpu_type": ns.gpu_type}
    given = {key: value for key, value in given.items() if value is not None}
    return {role: _over(res, given) for role, res in from_file.items() if replicas.count(role)}


def train_secrets(ns: argparse.Namespace, source_dir: str | Path) -> dict[str, str]:
    """The `--env-from-file` files' variables (paths relative to `source_dir`), then the
    `--secret` ones (which win); a `--secret NAME` without a value takes NAME's value from
    this process's environment."""
    found: dict[str, str] = {}
    for path in ns.env_from_file:
        found.update(read_env_file(os.path.join(source_dir, os.path.expanduser(path))))
    for name, value in ns.secret:
        if value is None:
            if name not in os.environ:
                raise InvalidSpec(
                    f"--secret {name}: no value given and no environment variable {name} here "
                    f"(give --secret {name}=VALUE, or set {name} first)"
                )
            value = os.environ[name]
        found[name] = value
    return found


def read_env_file(path: str) -> dict[str, str]:
    """The NAME=VALUE lines of a dotenv file (`export`, quotes and comments allowed), read
    literally: no `${VAR}` expansion; a line that is not an assignment is refused by number."""
    import io

    from dotenv.parser import parse_stream

    from ..packaging.files import read_text_file

    found: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(read_text_file(path))):
        line = binding.original.line
        if binding.error:
            text = binding.original.string.strip()[:60]
            raise InvalidSpec(f"--env-from-file {path}, line {line}: not NAME=VALUE: {text!r}")
        if binding.key is None:
            continue  # a comment or a blank line
        if binding.value is None:
            raise InvalidSpec(f"--env-from-file {path}, line {line}: {binding.key} has no value")
        found[binding.key] = binding.value
    return found


def _common_package_options(
    ns: argparse.Namespace, source_dir: str | Path, built_given_as: str
) -> dict[str, Any]:
    """The packaging options every kind of code shares (--include, --pip, --packages, ...)."""
    # Command-line paths are relative to `source_dir`, where the user is; a script's, a
    # package's or a template's folder is where packaging starts, so such paths are made
    # absolute first.
    moved = bool(ns.script or ns.package_path or getattr(ns, "template", None))

    def here(path: str) -> str:
        return os.path.abspath(os.path.join(source_dir, path)) if moved else path

    return {
        "includes": tuple(here(item) for item in ns.include),
        "excludes": tuple(ns.exclude),
        "requirements_file": here(ns.requirements) if ns.requirements else None,
        "pip": tuple(ns.pip),
        "built_given_as": built_given_as,
        "built": tuple(
            path if "://" in path else os.path.join(source_dir, os.path.expanduser(path))
            for group in ns.packages
            for path in group
        ),
    }


def _package(
    ns: argparse.Namespace,
    cell: str | None,
    source_dir: str | Path,
    user_ns: Mapping[str, Any] | None,
    built_given_as: str = "--packages",
) -> tuple[CodePackage, str]:
    """The code package of a `train` command (cell, SCRIPT or package folder, and built
    packages: `built_given_as` names where they were given), and its name."""
    from .. import packaging

    has_cell = cell is not None and bool(cell.strip())
    common = _common_package_options(ns, source_dir, built_given_as)
    if ns.module and not ns.package_path and common["built"] and not (ns.script or has_cell):
        if ns.export or ns.returns:
            raise InvalidSpec("--export and --return work with cell or script code only")
        built = packaging.package_built(common["built"], ns.module, common["pip"], built_given_as)
        return built, ns.module
    if ns.package_path or ns.module:
        if not (ns.package_path and ns.module):
            raise InvalidSpec(
                "--package-path and --module go together "
                "(e.g. --package-path trainer/ --module trainer.task)"
            )
        if ns.script or has_cell:
            what = "SCRIPT.py" if ns.script else "the cell's code"
            raise InvalidSpec(f"run either {what} or --package-path DIR --module MOD, not both")
        if ns.export or ns.returns:
            raise InvalidSpec("--export and --return work with cell or script code only")
        path = os.path.join(source_dir, ns.package_path)
        return packaging.package_directory(path, ns.module, **common), ns.module
    if ns.script:
        if has_cell:
            raise InvalidSpec("run either the cell's code or SCRIPT.py, not both")
        path = os.path.join(source_dir, ns.script)
        try:
            with open(path, encoding="utf-8") as file:
                source = file.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise InvalidSpec(f"cannot read {ns.script!r}: {reason}") from None
        code_dir: str | Path = os.path.dirname(os.path.abspath(path))
        name = os.path.splitext(os.path.basename(path))[0]
    elif cell is not None and has_cell:
        source, code_dir, name = cell, source_dir, "cell"
        common["magic"] = True
    else:
        where = "write code in the cell or " if cell is not None else ""
        raise InvalidSpec(
            f"nothing to run: {where}give SCRIPT.py or --package-path DIR --module MOD"
        )
    exports = _exports(ns, user_ns)
    package = packaging.package_cell(
        source, source_dir=code_dir, exports=exports, returns=tuple(ns.returns), **common
    )
    return package, name
