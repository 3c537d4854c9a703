"""The options of `train` (`cloudml train ...`, `%%cloudml_train ...`): the code, the cluster,
resources, the environment, failures, and the tuning and template groups."""

from __future__ import annotations

from ..models import Framework
from .flag_types import (
    add_output_option,
    finite_number,
    name_list,
    parse_duration,
    role_resources,
    secret_pair,
)
from .parser import COUNT, NAMES, PAIRS, REPEAT, SWITCH, Parser
from .study_flags import add_tuning_options
from .template_flags import add_template_options


def train_parser(prog: str) -> Parser:
    """The options of `train` (`cloudml train`, `%%cloudml_train`)."""
    parser = Parser(
        prog=prog,
        description="Run code as a training job: a notebook cell, SCRIPT.py, or a package "
        "(--package-path DIR --module MOD). Arguments after a literal '--' go to the trainer.",
        usage="%(prog)s [options] [SCRIPT.py] [-- TRAINER ARGS]",
    )
    add = parser.add_argument
    add("script", metavar="SCRIPT.py", nargs="?", help="a Python file to run (e.g. train.py)")
    add = parser.add_argument_group("job").add_argument
    add("--name", help="job name, a DNS label (e.g. --name mnist-cnn)")
    add(
        "--framework",
        choices=[f.value for f in Framework],
        help="distributed convention: tensorflow sets TF_CONFIG, pytorch sets RANK, WORLD_SIZE, "
        "MASTER_ADDR... (default generic, tensorflow with --config; e.g. --framework pytorch)",
    )
    add("--workers", **COUNT, help="worker replicas (default 1; e.g. --workers 4)")
    add(
        "--ps",
        **COUNT,
        help="TensorFlow parameter servers; parameter-server training needs a coordinator, so "
        "--ps N > 0 adds a chief (e.g. --framework tensorflow --ps 2 --workers 4)",
    )
    add("--chief", **SWITCH, help="TensorFlow: add a chief replica (implied by --ps)")
    add(
        "--evaluators",
        **COUNT,
        help="TensorFlow evaluator replicas, outside TF_CONFIG's cluster as on Google "
        "(e.g. --framework tensorflow --evaluators 1)",
    )
    add(
        "--tf-master",
        **SWITCH,
        help="TensorFlow: TF_CONFIG calls the chief 'master', as Google's legacy jobs do "
        "(e.g. --chief --tf-master)",
    )
    add("--retries", **COUNT, default=0, help="rerun a failed job up to N times (e.g. --retries 2)")
    add(
        "--timeout",
        type=parse_duration,
        metavar="DURATION",
        help="stop the job after this long: seconds, or 90s, 30m, 2h (e.g. --timeout 2h)",
    )
    add(
        "--max-wait",
        type=parse_duration,
        metavar="DURATION",
        help="fail the job if it waits longer than this for resources (Google's "
        "maxWaitTime; e.g. --max-wait 1h)",
    )
    add(
        "--notify",
        metavar="URL",
        help="POST the final job (or study) as JSON to this webhook when it ends, for chat or "
        "e-mail bridges (e.g. --notify https://chat.example.com/hooks/123)",
    )
    add(
        "--service-account",
        metavar="NAME",
        help="the Kubernetes ServiceAccount its pods run as (Google's serviceAccount; "
        "e.g. --service-account trainer)",
    )
    add(
        "--job-dir",
        metavar="PATH_OR_URI",
        help="output folder or fsspec URI, also passed to the trainer as --job-dir "
        "(e.g. --job-dir s3://bucket/run1)",
    )
    add("--env", **PAIRS, help="environment variable, repeatable (e.g. --env LR=0.01)")
    add(
        "--secret",
        **REPEAT,
        type=secret_pair,
        metavar="NAME[=VALUE]",
        help="environment variable kept out of every record (a private file here, a Secret on "
        "Kubernetes); NAME alone takes the value NAME has where you run this, repeatable "
        "(e.g. --secret API_TOKEN)",
    )
    add(
        "--env-from-file",
        **REPEAT,
        metavar="FILE",
        help="secrets from a dotenv file of NAME=VALUE lines, values taken literally "
        "(e.g. --env-from-file .env)",
    )
    add("--label", **PAIRS, help="label to find the job by, repeatable (e.g. --label team=cv)")
    add("--pre-command", metavar="CMD", help="run before the trainer (e.g. 'nvidia-smi')")
    add("--post-command", metavar="CMD", help="run after the trainer (e.g. 'ls $CLOUDML_JOB_DIR')")
    add("--wait", **SWITCH, help="block until the job ends; fails unless it SUCCEEDED")
    add("--dry-run", **SWITCH, help="show what would be shipped, submit nothing")
    add = parser.add_argument_group("resources (per replica)").add_argument
    add("--cpu", type=finite_number, metavar="N", help="CPU cores (e.g. --cpu 2 or --cpu 0.5)")
    add("--memory", metavar="QTY", help="memory (e.g. --memory 4Gi)")
    add("--gpus", **COUNT, help="GPUs (e.g. --gpus 1)")
    add("--gpu-type", metavar="TYPE", help="GPU model (e.g. --gpu-type a100)")
    add("--node-selector", **PAIRS, help="cluster node label, repeatable (e.g. pool=gpu)")
    add(
        "--resources",
        **REPEAT,
        type=role_resources,
        metavar="ROLE=KEY:VALUE,...",
        help="one role's own resources over the flags above, repeatable; keys cpu, memory, "
        "gpus, gpu-type (e.g. --resources ps=cpu:4,memory:16Gi,gpus:0)",
    )
    add(
        "--role-image",
        **PAIRS,
        help="one role's own image, repeatable (e.g. --role-image ps=tensorflow/tensorflow:2.15.0)",
    )
    add = parser.add_argument_group("code").add_argument
    add("--include", **REPEAT, metavar="PATH", help="also ship this path (e.g. data/vocab.txt)")
    add("--exclude", **REPEAT, metavar="GLOB", help="do not ship matches (e.g. '*.ckpt')")
    add("--requirements", metavar="FILE", help="pip requirements file (e.g. requirements.txt)")
    add("--pip", **REPEAT, metavar="SPEC", help="pip requirement, repeatable (e.g. 'torch>=2')")
    add(
        "--packages",
        **REPEAT,
        type=name_list,
        metavar="PATH,...",
        help="built packages (sdists, wheels; local paths or fsspec URIs) installed before the "
        "module runs, as AI Platform does (e.g. --packages dist/trainer-0.1.tar.gz)",
    )
    add(
        "--export",
        **NAMES,
        metavar="A,B",
        help="notebook only: ship these variables by value (e.g. --export df,vocab)",
    )
    add(
        "--return",
        **NAMES,
        dest="returns",
        metavar="X,Y",
        help="notebook only: load these variables back when the job succeeds "
        "(e.g. --return model,history; or later %%cloudml fetch JOB)",
    )
    add("--package-path", metavar="DIR", help="run a trainer package instead (e.g. trainer/)")
    add(
        "--module",
        "--module-name",
        metavar="MOD",
        help="module of --package-path to run (gcloud spells it --module-name; e.g. trainer.task)",
    )
    add(
        "--config",
        metavar="FILE",
        help="a Google AI Platform job config (the whole trainingInput: scale tier, machine "
        "types, counts, accelerators, images, args, hyperparameters...); flags override it "
        "(e.g. --config config.yaml)",
    )
    add = parser.add_argument_group("runtime").add_argument
    add("--image", help="container image, cluster backends (e.g. pytorch/pytorch:2.3.0)")
    add(
        "--backend",
        metavar="NAME",
        help="where to run, instead of the configured backend: local, kubernetes or a Backend "
        "class path (e.g. --backend kubernetes --dry-run --output yaml)",
    )
    add("--python", metavar="PATH", help="local interpreter (e.g. ~/envs/tf/bin/python)")
    add_tuning_options(parser)
    add_template_options(parser)
    add_output_option(parser, yaml=True)
    return parser
