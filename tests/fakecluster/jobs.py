"""The Job controller (batch/v1): pods per completion index, retries, failure policy, deadline,
suspension, status and conditions as kube-controller-manager keeps them (1.31+ semantics:
``FailureTarget``/``SuccessCriteriaMet`` first, ``Failed``/``Complete`` once no pod is left
running), and the TTL-after-finished controller."""

from __future__ import annotations

import copy
import dataclasses
import time

from .base import Context, Controller
from .common import (
    ApiError,
    Obj,
    condition_true,
    controller_kind,
    controller_uid,
    owner_ref,
    parse_time,
    rfc3339,
    set_condition,
)
from .resources import ResourceType

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
COMPONENT = "job-controller"


@dataclasses.dataclass
class Outcome:
    """How one of a Job's pods ended."""

    index: int | None
    phase: str
    pod: Obj


@dataclasses.dataclass
class JobState:
    """What the controller remembers of a Job between passes (real ones use pod finalizers)."""

    outcomes: dict[str, Outcome] = dataclasses.field(default_factory=dict)
    #: Pods the controller deleted itself (suspension, failure, deadline): not failures.
    expected: set[str] = dataclasses.field(default_factory=set)
    ignored: set[str] = dataclasses.field(default_factory=set)
    evaluated: set[str] = dataclasses.field(default_factory=set)
    failure: tuple[str, str] | None = None
    last_failure: float = 0.0
    #: Pod creations refused in a row (quota...), and when to try again.
    create_failures: int = 0
    create_retry: float = 0.0


def _index(pod: Obj) -> int | None:
    value = (pod.get("metadata", {}).get("annotations") or {}).get(COMPLETION_INDEX)
    return int(value) if value is not None else None


def _terminal(pod: Obj) -> bool:
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


def compress(indexes: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"`` (the format of ``completedIndexes``)."""
    parts: list[str] = []
    for i in sorted(set(indexes)):
        if parts and parts[-1].split("-")[-1] == str(i - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{i}"
        else:
            parts.append(str(i))
    return ",".join(parts)


def policy_action(job: Obj, pod: Obj) -> tuple[str | None, str]:
    """The podFailurePolicy rule a failed pod matches: (action, message), or (None, "")."""
    m = pod["metadata"]
    rules = (job["spec"].get("podFailurePolicy") or {}).get("rules") or []
    statuses = pod.get("status", {}).get("containerStatuses") or []
    for i, rule in enumerate(rules):
        action = rule.get("action")
        codes = rule.get("onExitCodes")
        if codes:
            for cs in statuses:
                if codes.get("containerName") and cs.get("name") != codes["containerName"]:
                    continue
                terminated = (cs.get("state") or {}).get("terminated")
                if not terminated or not terminated.get("exitCode"):
                    continue
                code = int(terminated["exitCode"])
                values = [int(v) for v in codes.get("values") or []]
                if (code in values) == (codes.get("operator", "In") == "In"):
                    return action, (
                        f"Container {cs.get('name')} for pod {m['namespace']}/{m['name']} failed "
                        f"with exit code {code} matching {action} rule at index {i}"
                    )
        for wanted in rule.get("onPodConditions") or []:
            for cond in pod.get("status", {}).get("conditions") or []:
                if cond.get("type") == wanted.get("type") and cond.get("status") == wanted.get(
                    "status", "True"
                ):
                    return action, (
                        f"Pod {m['namespace']}/{m['name']} has condition {cond['type']} matching "
                        f"{action} rule at index {i}"
                    )
    return None, ""


class JobController(Controller):
    """Creates, replaces and deletes the pods of every Job and keeps its status."""

    kinds = frozenset({"Job", "Pod"})
    tick = 0.1

    def __init__(self, ctx: Context, backoff: float = 0.0, create_backoff: float = 1.0) -> None:
        super().__init__(ctx)
        self.jobs_rt: ResourceType = ctx.rt("jobs")
        self.pods_rt: ResourceType = ctx.rt("pods")
        self.backoff = backoff
        self.create_backoff = create_backoff
        self.states: dict[str, JobState] = {}

    def on_change(self, rt: ResourceType, kind: str, obj: Obj, old: Obj | None) -> None:
        """Remember how each Job pod ended (before it can disappear) and wake."""
        if rt == self.pods_rt and controller_kind(obj) == "Job":
            owner, uid = controller_uid(obj), obj["metadata"]["uid"]
            state = self.states.setdefault(str(owner), JobState())
            phase = obj.get("status", {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                state.outcomes.setdefault(uid, Outcome(_index(obj), phase, obj))
            elif kind == "DELETED" and uid not in state.outcomes:
                state.outcomes[uid] = Outcome(_index(obj), "Failed", obj)
        super().on_change(rt, kind, obj, old)

    def reconcile(self) -> None:
        """Sync every Job with its pods."""
        live = self.store.live()
        pods: dict[str, list[Obj]] = {}
        jobs = []
        for rt, obj in live:
            if rt == self.jobs_rt:
                jobs.append(obj)
            elif rt == self.pods_rt and controller_kind(obj) == "Job":
                pods.setdefault(str(controller_uid(obj)), []).append(obj)
        for job in jobs:
            self._sync(job, pods.get(job["metadata"]["uid"], []))
        uids = {job["metadata"]["uid"] for job in jobs}
        for uid in [u for u in self.states if u not in uids and u not in pods]:
            del self.states[uid]

    def _sync(self, job: Obj, pods: list[Obj]) -> None:
        """One Job: count outcomes, decide success/failure, create/delete pods, write status."""
        m, spec = job["metadata"], job["spec"]
        if m.get("deletionTimestamp"):
            return
        status = copy.deepcopy(job.get("status") or {})
        if condition_true(job, "Complete") or condition_true(job, "Failed"):
            self._expire(job, status)
            return
        state = self.states.setdefault(m["uid"], JobState())
        now = time.time()
        conditions: list[Obj] = status.setdefault("conditions", [])
        indexed = spec.get("completionMode") == "Indexed"
        active = [
            p for p in pods if not _terminal(p) and not p["metadata"].get("deletionTimestamp")
        ]
        outcomes = {u: o for u, o in state.outcomes.items() if u not in state.expected}
        for uid, outcome in outcomes.items():
            if outcome.phase == "Failed" and uid not in state.evaluated:
                state.evaluated.add(uid)
                state.last_failure = now
                action, message = policy_action(job, outcome.pod)
                if action == "FailJob" and state.failure is None:
                    state.failure = ("PodFailurePolicy", message)
                elif action == "Ignore":
                    state.ignored.add(uid)
        failed = [u for u, o in outcomes.items() if o.phase == "Failed" and u not in state.ignored]
        done = [o for o in outcomes.values() if o.phase == "Succeeded"]
        done_indexes = sorted({o.index for o in done if o.index is not None})
        succeeded = len(done_indexes) if indexed else len(done)
        completions = spec.get("completions")
        suspended = bool(spec.get("suspend"))
        if state.failure is None and len(failed) > int(spec.get("backoffLimit", 6)):
            state.failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        started = parse_time(status.get("startTime"))
        deadline = spec.get("activeDeadlineSeconds")
        overdue = deadline is not None and started and now - started >= float(deadline)
        if state.failure is None and not suspended and overdue:
            state.failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
        if indexed:
            complete = set(range(int(completions or 0))) <= set(done_indexes)
        elif completions is not None:
            complete = succeeded >= int(completions)
        else:
            complete = succeeded > 0 and not active
        stamp = rfc3339(now)
        if state.failure is not None:
            reason, message = state.failure
            if set_condition(
                conditions, "FailureTarget", "True", reason, message, lastProbeTime=stamp
            ):
                self.ctx.events.record(job, "Warning", reason, message, COMPONENT)
            self._delete(job, state, active)
            active = []
            if not any(not _terminal(p) for p in pods):
                set_condition(conditions, "Failed", "True", reason, message, lastProbeTime=stamp)
        elif complete:
            reached = ("CompletionsReached", "Reached expected number of succeeded pods")
            set_condition(conditions, "SuccessCriteriaMet", "True", *reached, lastProbeTime=stamp)
            self._delete(job, state, active)
            active = []
            if not any(not _terminal(p) for p in pods):
                set_condition(conditions, "Complete", "True", *reached, lastProbeTime=stamp)
                status["completionTime"] = stamp
                self.ctx.events.record(job, "Normal", "Completed", "Job completed", COMPONENT)
        elif suspended:
            self._delete(job, state, active)
            active = []
            if set_condition(
                conditions,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                lastProbeTime=stamp,
            ):
                self.ctx.events.record(job, "Normal", "Suspended", "Job suspended", COMPONENT)
        else:
            if condition_true(job, "Suspended"):
                set_condition(
                    conditions,
                    "Suspended",
                    "False",
                    "JobResumed",
                    "Job resumed",
                    lastProbeTime=stamp,
                )
                self.ctx.events.record(job, "Normal", "Resumed", "Job resumed", COMPONENT)
                status["startTime"] = stamp
            status.setdefault("startTime", stamp)
            if (
                now >= state.last_failure + self.backoff * min(2 ** max(len(failed) - 1, 0), 64)
                or not failed
            ) and now >= state.create_retry:
                active += self._create(job, state, active, done_indexes, succeeded)
        terminating = [
            p for p in pods if not _terminal(p) and p["metadata"].get("deletionTimestamp")
        ]
        ready = [
            p
            for p in active
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in p.get("status", {}).get("conditions") or []
            )
        ]
        for field, value in (
            ("active", len(active)),
            ("succeeded", succeeded),
            ("failed", len(failed)),
        ):
            if value:
                status[field] = value
            else:
                status.pop(field, None)
        status["ready"] = len(ready)
        status["terminating"] = len(terminating)
        status["uncountedTerminatedPods"] = {}
        if indexed and done_indexes:
            status["completedIndexes"] = compress(done_indexes)
        if not conditions:
            status.pop("conditions")

        def write(j: Obj) -> None:
            j["status"] = status

        self.store.update_obj(self.jobs_rt, job, write)

    def _create(
        self, job: Obj, state: JobState, active: list[Obj], done_indexes: list[int], succeeded: int
    ) -> list[Obj]:
        """The missing pods; when the API refuses one (quota...), a ``FailedCreate`` warning
        and a retry after an exponential backoff, as the real controller's work queue does."""
        spec = job["spec"]
        parallelism = int(spec.get("parallelism", 1))
        wanted: list[int | None] = []
        if spec.get("completionMode") == "Indexed":
            running = {_index(p) for p in active}
            free = [
                i
                for i in range(int(spec.get("completions") or 0))
                if i not in running and i not in done_indexes
            ]
            wanted += free[: max(0, parallelism - len(active))]
        else:
            completions = spec.get("completions")
            want = (
                parallelism
                if completions is None
                else min(parallelism, int(completions) - succeeded)
            )
            wanted += [None] * max(0, want - len(active))
        created: list[Obj] = []
        for index in wanted:
            try:
                created.append(self._pod(job, index))
            except ApiError as exc:
                self.ctx.events.record(
                    job, "Warning", "FailedCreate", f"Error creating: {exc.message}", COMPONENT
                )
                state.create_failures += 1
                delay = self.create_backoff * min(2 ** (state.create_failures - 1), 60)
                state.create_retry = time.time() + delay
                return created
        state.create_failures = 0
        return created

    def _pod(self, job: Obj, index: int | None) -> Obj:
        name = job["metadata"]["name"]
        template = copy.deepcopy(job["spec"].get("template") or {})
        tmeta = template.get("metadata") or {}
        labels = dict(tmeta.get("labels") or {})
        annotations = dict(tmeta.get("annotations") or {})
        spec = template.get("spec") or {}
        if index is not None:
            labels[COMPLETION_INDEX] = annotations[COMPLETION_INDEX] = str(index)
            spec.setdefault("hostname", f"{name}-{index}")
            ref = f"metadata.annotations['{COMPLETION_INDEX}']"
            for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
                env = container.setdefault("env", [])
                if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in env):
                    env.append(
                        {
                            "name": "JOB_COMPLETION_INDEX",
                            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": ref}},
                        }
                    )
        body = {
            "metadata": {
                "generateName": f"{name}-{index}-" if index is not None else f"{name}-",
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [owner_ref(job)],
            },
            "spec": spec,
        }
        pod = self.store.create(self.pods_rt, job["metadata"]["namespace"], body)
        self.ctx.events.record(
            job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}", COMPONENT
        )
        return pod

    def _delete(self, job: Obj, state: JobState, pods: list[Obj]) -> None:
        for pod in pods:
            m = pod["metadata"]
            state.expected.add(m["uid"])
            self.store.delete_obj(self.pods_rt, pod)
            self.ctx.events.record(
                job, "Normal", "SuccessfulDelete", f"Deleted pod: {m['name']}", COMPONENT
            )

    def _expire(self, job: Obj, status: Obj) -> None:
        """The TTL-after-finished controller: delete a finished Job once its TTL is over."""
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        finished = parse_time(status.get("completionTime"))
        for cond in status.get("conditions") or []:
            if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
                finished = finished or parse_time(cond.get("lastTransitionTime"))
        if finished is not None and time.time() >= finished + float(ttl):
            self.store.delete_obj(self.jobs_rt, job, propagation="Background")
