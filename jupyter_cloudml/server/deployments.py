"""REST handlers of model deployments under `{base_url}cloudml/api/deployments`: list, deploy,
inspect, undeploy, predict, split the traffic, roll back and scale (see `openapi.yaml`)."""

from __future__ import annotations

from typing import Any

from tornado import web

from .. import exceptions
from ..models import DeploymentInfo, DeploySpec, ModelFramework
from ..views.deployments import deployment_dict
from .handlers import ID, CloudMLHandler

#: The fields of a deploy request, and the JSON type each must have.
DEPLOY_FIELDS: dict[str, type] = {
    "name": str,
    "model": str,
    "framework": str,
    "version": str,
    "replicas": int,
    "predictor": str,
    "traffic": dict,
}
JSON_TYPES = {str: "string", int: "whole number", dict: "JSON object"}


def deployment_json(info: DeploymentInfo) -> dict[str, Any]:
    """A deployment as the API shows it, with its replicas counted over every version."""
    data = deployment_dict(info)
    data["replicas"] = {
        "ready": sum(v.ready for v in info.versions),
        "total": sum(len(v.replicas) for v in info.versions),
    }
    return data


def deploy_spec(body: dict[str, Any]) -> DeploySpec:
    """The `DeploySpec` of a deploy request; `InvalidSpec` naming a field unknown or mistyped."""
    _refuse_unknown(body, tuple(DEPLOY_FIELDS), "a deploy")
    for field in ("name", "model", "framework"):
        if field not in body:
            raise exceptions.InvalidSpec(
                f'give {field}, e.g. {{"name": "iris", "model": "job:iris/model.joblib", '
                '"framework": "sklearn"}'
            )
    for field, kind in DEPLOY_FIELDS.items():
        value = body.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
            raise exceptions.InvalidSpec(f"{field} must be a {JSON_TYPES[kind]}, got {value!r}")
    try:
        framework = ModelFramework(body["framework"])
    except ValueError:
        known = ", ".join(f.value for f in ModelFramework)
        raise exceptions.InvalidSpec(
            f"unknown framework {body['framework']!r}: use {known}"
        ) from None
    given = {key: value for key, value in body.items() if value is not None}
    return DeploySpec(**{**given, "framework": framework})


def _refuse_unknown(body: dict[str, Any], known: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise exceptions.InvalidSpec(
            f"unknown field(s) {', '.join(unknown)}: {what} takes {', '.join(known)}"
        )


class DeploymentsHandler(CloudMLHandler):
    @web.authenticated
    async def get(self) -> None:
        found = await self.client_call("deployments")
        self.reply({"deployments": [deployment_json(d) for d in found]})

    @web.authenticated
    async def post(self) -> None:
        """Serve a model (`job:STUDY` is the study's best trial); answers once it is ready."""
        spec = deploy_spec(self.json_body())
        self.reply(deployment_json(await self.client_call("deploy", spec)), status=201)


class DeploymentHandler(CloudMLHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        self.reply(deployment_json(await self.client_call("get_deployment", name)))

    @web.authenticated
    async def delete(self, name: str) -> None:
        """Undeploy it, or only `?version=V` (which must get no traffic)."""
        version = self.get_query_argument("version", None) or None
        await self.client_call("undeploy", name, version)
        self.reply_done()


class PredictHandler(CloudMLHandler):
    """Predictions through the Jupyter server (the browser may not reach the endpoint)."""

    @web.authenticated
    async def post(self, name: str) -> None:
        body = self.json_body()
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances:
            raise exceptions.InvalidSpec('give the rows as {"instances": [[...], ...]}')
        version = body.get("version")
        if version is not None and not isinstance(version, str):
            raise exceptions.InvalidSpec("version must be a string")
        predictions = await self.client_call("predict", name, instances, version=version)
        self.reply({"predictions": predictions})


class TrafficHandler(CloudMLHandler):
    @web.authenticated
    async def put(self, name: str) -> None:
        """Split the requests that name no version: `{"traffic": {"v1": 90, "v2": 10}}`."""
        body = self.json_body()
        _refuse_unknown(body, ("traffic",), "a traffic split")
        traffic = body.get("traffic")
        if not (
            isinstance(traffic, dict)
            and traffic
            and all(
                isinstance(share, int) and not isinstance(share, bool) for share in traffic.values()
            )
        ):
            raise exceptions.InvalidSpec(
                'give the split as {"traffic": {"v1": 90, "v2": 10}} (whole percents)'
            )
        self.reply(deployment_json(await self.client_call("set_traffic", name, traffic)))


class RollbackHandler(CloudMLHandler):
    @web.authenticated
    async def post(self, name: str) -> None:
        """Send every request back to the version deployed before the one serving most."""
        self.reply(deployment_json(await self.client_call("rollback", name)))


class ScaleHandler(CloudMLHandler):
    @web.authenticated
    async def post(self, name: str) -> None:
        """Serve one version with N replicas: `{"version": "v1", "replicas": 3}`."""
        body = self.json_body()
        _refuse_unknown(body, ("version", "replicas"), "a scale")
        version, replicas = body.get("version"), body.get("replicas")
        if not isinstance(version, str) or not version:
            raise exceptions.InvalidSpec('give the version to scale, e.g. {"version": "v1"}')
        if isinstance(replicas, bool) or not isinstance(replicas, int):
            raise exceptions.InvalidSpec(
                f'give replicas as a whole number, e.g. {{"replicas": 2}}, got {replicas!r}'
            )
        self.reply(deployment_json(await self.client_call("scale", name, version, replicas)))


_BASE = "/cloudml/api/deployments"
_NAME = ID.format("name")

DEPLOYMENT_HANDLERS: list[tuple[str, type[CloudMLHandler]]] = [
    (_BASE, DeploymentsHandler),
    (f"{_BASE}/{_NAME}", DeploymentHandler),
    (f"{_BASE}/{_NAME}/predict", PredictHandler),
    (f"{_BASE}/{_NAME}/traffic", TrafficHandler),
    (f"{_BASE}/{_NAME}/rollback", RollbackHandler),
    (f"{_BASE}/{_NAME}/scale", ScaleHandler),
]
