"""The resource types the fake API server knows: names, kinds, scopes, defaults, validation."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator

from .common import ApiError, Obj
from .quantity import Quantity
from .selectors import match_labels_selector


@dataclasses.dataclass(frozen=True)
class ResourceType:
    """One served resource: ``group/version/plural`` and what the server needs to know."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    #: Has a ``/status`` subresource (main-resource writes keep the status, and vice versa).
    status: bool = False
    #: DELETE answers with the deleted object rather than a ``Status``.
    returns_deleted: bool = False
    custom: bool = False
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        """``v1`` or ``group/version``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """``group/version/plural`` (group empty for the core API)."""
        return f"{self.group}/{self.version}/{self.plural}"

    @property
    def qualified(self) -> str:
        """``jobs.batch`` (or ``pods``): how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        """The lower-case kind."""
        return self.kind.lower()


_BUILTIN = [
    ResourceType("", "v1", "pods", "Pod", status=True, returns_deleted=True, short_names=("po",)),
    ResourceType("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    ResourceType("", "v1", "secrets", "Secret"),
    ResourceType("", "v1", "services", "Service", status=True, returns_deleted=True),
    ResourceType("", "v1", "events", "Event", short_names=("ev",)),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", status=True),
    ResourceType("", "v1", "resourcequotas", "ResourceQuota", status=True, short_names=("quota",)),
    ResourceType("", "v1", "limitranges", "LimitRange", short_names=("limits",)),
    ResourceType("", "v1", "endpoints", "Endpoints"),
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, status=True),
    ResourceType("", "v1", "nodes", "Node", namespaced=False, status=True),
    ResourceType("batch", "v1", "jobs", "Job", status=True),
    ResourceType("batch", "v1", "cronjobs", "CronJob", status=True),
    ResourceType("apps", "v1", "deployments", "Deployment", status=True, short_names=("deploy",)),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", status=True),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", status=True),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False
    ),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        namespaced=False,
    ),
    ResourceType("networking.k8s.io", "v1", "ingresses", "Ingress", status=True),
]

#: Kinds of well-known custom resources (others get a capitalised singular of the plural).
_CUSTOM_KINDS = {
    "inferenceservices": "InferenceService",
    "servingruntimes": "ServingRuntime",
    "clusterservingruntimes": "ClusterServingRuntime",
    "inferencegraphs": "InferenceGraph",
    "trainedmodels": "TrainedModel",
}


def custom_type(spec: str) -> ResourceType:
    """A custom resource from ``group/version/plural`` (namespaced, with a status)."""
    group, version, plural = spec.strip("/").split("/")
    kind = _CUSTOM_KINDS.get(plural) or plural.removesuffix("s").capitalize()
    return ResourceType(
        group, version, plural, kind, status=True, returns_deleted=True, custom=True
    )


class Registry:
    """The served resource types, found by path parts or by plural name."""

    def __init__(self, crds: Iterable[str] = ()) -> None:
        self.types: list[ResourceType] = [*_BUILTIN, *(custom_type(c) for c in crds)]
        self._by_path = {(t.group, t.version, t.plural): t for t in self.types}

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type served at ``/apis/group/version/plural`` (or ``/api/v1/plural``)."""
        return self._by_path.get((group, version, plural))

    def by_plural(self, plural: str) -> ResourceType:
        """The type named ``plural`` (``jobs``) or ``plural.group`` (``jobs.batch``)."""
        name, _, group = plural.partition(".")
        for rt in self.types:
            if rt.plural == name and (not group or rt.group == group):
                return rt
        raise KeyError(f"unknown resource {plural!r}")


# --- validation -------------------------------------------------------------------------------

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
CONFIGMAP_MAX_BYTES = 1024 * 1024


def _invalid(rt: ResourceType, name: str, causes: list[tuple[str, str]]) -> ApiError:
    text = ", ".join(f"{field}: {msg}" for field, msg in causes)
    return ApiError(
        422,
        "Invalid",
        f'{rt.kind}{"." + rt.group if rt.group else ""} "{name}" is invalid: {text}',
        {
            "name": name,
            "group": rt.group,
            "kind": rt.kind,
            "causes": [
                {"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes
            ],
        },
    )


def _label_key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (at most 63 characters)"
        )
    return None


def validate(rt: ResourceType, obj: Obj) -> None:
    """Reject what a real API server rejects for any object: bad names, labels, sizes."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    causes: list[tuple[str, str]] = []
    if rt.group == "rbac.authorization.k8s.io":  # any path segment: "system:discovery"
        for bad in ("/", "%"):
            if bad in name:
                causes.append(
                    ("metadata.name", f'Invalid value: "{name}": may not contain {bad!r}')
                )
        if name in ("", ".", ".."):
            causes.append(("metadata.name", f'Invalid value: "{name}": may not be {name!r}'))
    elif rt.kind in ("Service", "Namespace"):
        pattern = _DNS_1035 if rt.kind == "Service" else _DNS_LABEL
        if len(name) > 63 or not pattern.match(name):
            causes.append(
                (
                    "metadata.name",
                    f'Invalid value: "{name}": a DNS label must consist of lower case '
                    "alphanumeric characters or '-', and start and end with an alphanumeric "
                    "character (a Service's must start with a letter; at most 63 characters)",
                )
            )
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        causes.append(
            (
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower '
                "case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character",
            )
        )
    if rt.kind == "Job" and len(name) > 63:
        causes.append(("metadata.name", f'Invalid value: "{name}": must be no more than 63 chars'))
    label_sets = [("metadata.labels", meta.get("labels") or {})]
    template = (obj.get("spec") or {}).get("template")
    if isinstance(template, dict):
        tmeta = template.get("metadata") or {}
        label_sets.append(("spec.template.metadata.labels", tmeta.get("labels") or {}))
    for field, labels in label_sets:
        for key, value in labels.items():
            problem = _label_key_problem(str(key))
            if problem:
                causes.append((field, f'Invalid value: "{key}": {problem}'))
            if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
                causes.append(
                    (
                        field,
                        f'Invalid value: "{value}": a valid label must be an empty string or '
                        "consist of alphanumeric characters, '-', '_' or '.', and must start "
                        "and end with an alphanumeric character (at most 63 characters)",
                    )
                )
    if rt.kind == "Deployment":
        spec = obj.get("spec") or {}
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not spec.get("selector"):
            causes.append(("spec.selector", "Required value"))
        elif not match_labels_selector(spec["selector"])({"metadata": {"labels": template_labels}}):
            causes.append(
                (
                    "spec.template.metadata.labels",
                    "Invalid value: `selector` does not match template `labels`",
                )
            )
    annotations = meta.get("annotations") or {}
    if sum(len(k) + len(str(v)) for k, v in annotations.items()) > 256 * 1024:
        causes.append(("metadata.annotations", "Too long: must have at most 262144 bytes"))
    if rt.kind == "ConfigMap":
        size = sum(len(k) + len(str(v)) for k, v in (obj.get("data") or {}).items())
        size += sum(len(k) + len(str(v)) * 3 // 4 for k, v in (obj.get("binaryData") or {}).items())
        if size > CONFIGMAP_MAX_BYTES:
            causes.append(("[]", f"Too long: must have at most {CONFIGMAP_MAX_BYTES} bytes"))
    if causes:
        raise _invalid(rt, name, causes)
    for amount in _quantities(rt, obj):
        try:
            Quantity.parse(amount)
        except ValueError:
            raise ApiError(
                400,
                "BadRequest",
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                "quantities must match the regular expression "
                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            ) from None


def _quantities(rt: ResourceType, obj: Obj) -> Iterator[object]:
    """The resource amounts an object holds (containers', a quota's, a LimitRange's)."""
    spec = obj.get("spec") or {}
    if rt.kind == "ResourceQuota":
        yield from (spec.get("hard") or {}).values()
    elif rt.kind == "LimitRange":
        for item in spec.get("limits") or []:
            for field in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
                yield from (item.get(field) or {}).values()
    pod_spec = spec if rt.kind == "Pod" else (spec.get("template") or {}).get("spec") or {}
    for container in [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]:
        resources = container.get("resources") or {}
        for field in ("requests", "limits"):
            yield from (resources.get(field) or {}).values()


def check_immutable(rt: ResourceType, old: Obj, new: Obj) -> None:
    """Immutable ConfigMaps/Secrets keep their data; a Job's pod template cannot change."""
    name = old["metadata"]["name"]
    if rt.kind in ("ConfigMap", "Secret") and old.get("immutable"):
        for field in ("data", "binaryData", "stringData"):
            if old.get(field) != new.get(field):
                raise _invalid(
                    rt, name, [(field, "Forbidden: field is immutable when `immutable` is set")]
                )
    if rt.kind in ("RoleBinding", "ClusterRoleBinding") and old.get("roleRef") != new.get(
        "roleRef"
    ):
        raise _invalid(rt, name, [("roleRef", "Invalid value: cannot change roleRef")])
    if rt.kind == "Job":
        before, after = old.get("spec", {}), new.get("spec", {})
        for field in ("template", "completions", "completionMode", "selector"):
            if json.dumps(before.get(field), sort_keys=True) != json.dumps(
                after.get(field), sort_keys=True
            ):
                raise _invalid(rt, name, [(f"spec.{field}", "Invalid value: field is immutable")])


# --- defaulting ---------------------------------------------------------------------------------


def apply_defaults(rt: ResourceType, obj: Obj) -> None:
    """Fill the fields the API server defaults on create, for the kinds the fake runs."""
    if rt.kind == "Job":
        _default_job(obj)
    elif rt.kind == "Pod":
        _default_pod_spec(obj.setdefault("spec", {}))
        _default_requests_to_limits(obj["spec"])
    elif rt.kind == "Deployment":
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault(
            "strategy",
            {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        )
        _default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))
        obj["status"] = {}
    elif rt.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        labels = obj["metadata"].setdefault("labels", {})
        labels.setdefault("kubernetes.io/metadata.name", obj["metadata"]["name"])
    elif rt.kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("clusterIP") != "None":
            spec.setdefault("clusterIP", "10.96.0.10")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    elif rt.kind == "LimitRange":
        for item in (obj.get("spec") or {}).get("limits") or []:
            _default_limit_range_item(item)
    elif rt.custom:
        obj.setdefault("status", {})


def prepare_for_create(rt: ResourceType, obj: Obj) -> None:
    """What the server sets after admission plugins changed the object: a Pod's status."""
    if rt.kind == "Pod":
        obj["status"] = {"phase": "Pending", "qosClass": _qos(obj["spec"])}


def _default_job(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    uid = obj["metadata"]["uid"]
    name = obj["metadata"]["name"]
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    spec.setdefault("manualSelector", False)
    spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    template = spec.setdefault("template", {})
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    labels.update(
        {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
    )
    _default_pod_spec(template.setdefault("spec", {}))
    obj["status"] = {}


def _default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        container.setdefault("imagePullPolicy", "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})


def _default_requests_to_limits(spec: Obj) -> None:
    """A Pod's (not a template's) containers request what they limit unless told otherwise."""
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        resources = container.setdefault("resources", {})
        limits = resources.get("limits") or {}
        if limits:
            requests = resources.setdefault("requests", {})
            for name, amount in limits.items():
                requests.setdefault(name, amount)


def _default_limit_range_item(item: Obj) -> None:
    """A Container limit's default limit falls back to its max, its default request to the
    default limit, then to its min."""
    if item.get("type") != "Container":
        return
    default = item.setdefault("default", {})
    request = item.setdefault("defaultRequest", {})
    for name, amount in (item.get("max") or {}).items():
        default.setdefault(name, amount)
    for source in (default, item.get("min") or {}):
        for name, amount in source.items():
            request.setdefault(name, amount)


def _qos(spec: Obj) -> str:
    containers = spec.get("containers") or []
    if not any((c.get("resources") or {}).get("requests") for c in containers):
        return "BestEffort"
    for c in containers:
        res = c.get("resources") or {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        if not limits or set(limits) < {"cpu", "memory"} or limits != requests:
            return "Burstable"
    return "Guaranteed"
