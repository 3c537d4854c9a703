"""Every label and annotation key the Kubernetes backend writes or selects on, in one place."""

from __future__ import annotations

from collections.abc import Mapping

from .names import job_name

MANAGED_BY_KEY = "app.kubernetes.io/managed-by"
MANAGED_BY = "jupyter-cloudml"
#: The job's base object name (a label-safe form of its id, see ``names.job_name``).
JOB_KEY = "cloudml.io/job"
#: Replica role: chief, worker or ps.
ROLE_KEY = "cloudml.io/replica-type"
#: The job id exactly as the project knows it (labels cannot hold every string).
JOB_ID_ANNOTATION = "cloudml.io/job-id"
#: On a job's primary Job: the TrainSpec as JSON (without the code archive).
SPEC_ANNOTATION = "cloudml.io/spec"
#: On a job's primary Job: submission time, seconds since the epoch (finer than creationTimestamp).
CREATED_ANNOTATION = "cloudml.io/created"
#: On a job's primary Job once cancelled: when, seconds since the epoch.
CANCELLED_ANNOTATION = "cloudml.io/cancelled"
#: Set by Kubernetes on the pods of an Indexed Job (annotation, and label since 1.28).
COMPLETION_INDEX_KEY = "batch.kubernetes.io/job-completion-index"


def job_labels(
    job_id: str, role: str | None = None, user: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Labels of a job's objects: the user's, then ours (which win)."""
    labels = dict(user or {})
    labels[MANAGED_BY_KEY] = MANAGED_BY
    labels[JOB_KEY] = job_name(job_id)
    if role is not None:
        labels[ROLE_KEY] = role
    return labels


def job_match_labels(job_id: str) -> dict[str, str]:
    """The labels selecting every object (and pod) of a job."""
    return {MANAGED_BY_KEY: MANAGED_BY, JOB_KEY: job_name(job_id)}


def job_selector(job_id: str) -> str:
    """A label selector string for a job, e.g. for ``kubectl delete all,cm -l ...``."""
    return ",".join(f"{k}={v}" for k, v in job_match_labels(job_id).items())


def managed_selector() -> str:
    """A label selector for everything this project manages (one watch per namespace)."""
    return f"{MANAGED_BY_KEY}={MANAGED_BY}"


# --- serving and TensorBoard ------------------------------------------------------------------
# Keys of the objects built by `serving.py` (model deployments) and `tensorboard.py`.

#: A deployment's base object name (its InferenceService, or its plain Services/Deployments).
DEPLOYMENT_KEY = "cloudml.io/deployment"
#: One version of a deployment: on its plain Deployment, Service and pods, on KServe pods.
VERSION_KEY = "cloudml.io/version"
#: A TensorBoard's id, on its Deployment, Service and pod.
TENSORBOARD_KEY = "cloudml.io/tensorboard"
#: On an InferenceService: JSON list of {version, model, framework, created}, oldest first.
VERSIONS_ANNOTATION = "cloudml.io/versions"
#: On an InferenceService and a plain deployment's main Service: JSON {version: percent}.
TRAFFIC_ANNOTATION = "cloudml.io/traffic"
#: On a plain version's Deployment: JSON {version, model, framework, created}.
VERSION_INFO_ANNOTATION = "cloudml.io/version-info"
#: On a TensorBoard's Deployment and Service: JSON list of the job ids it shows.
JOBS_ANNOTATION = "cloudml.io/jobs"


def deployment_labels(base: str, version: str | None = None) -> dict[str, str]:
    """Labels of a deployment's objects (``base``: its object name), of one version if given."""
    labels = {MANAGED_BY_KEY: MANAGED_BY, DEPLOYMENT_KEY: base}
    if version is not None:
        labels[VERSION_KEY] = version
    return labels


def deployment_selector(base: str) -> str:
    """A label selector string for every object (and pod) of a deployment."""
    return ",".join(f"{k}={v}" for k, v in deployment_labels(base).items())


def tensorboard_labels(tb_id: str) -> dict[str, str]:
    """Labels of a TensorBoard's objects and pod (``tb_id``: its object name)."""
    return {MANAGED_BY_KEY: MANAGED_BY, TENSORBOARD_KEY: tb_id}
