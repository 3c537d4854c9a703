"""A pod's sandbox on the node: its volumes as folders (ConfigMaps, Secrets, projected tokens,
claims), its hosts file, and each container's command, environment and working folder."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..kubeapi import ApiError, Obj

if TYPE_CHECKING:
    from .agent import NodeAgent
    from .pod import ContainerBox

SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
#: Leads every container's PYTHONPATH: its sitecustomize gives the pod its own listening address.
POD_NETWORK = Path(__file__).resolve().parent / "podnet"
#: The checkout whose `jupyter_cloudml` the images hold (the one under test, set by the harness):
#: it follows the pod network on every container's PYTHONPATH.
IMAGE_CODE = os.environ.get("CLOUDML_TEST_IMAGE_CODE", "")
#: Mounted in the container's own mount namespace; other mount paths are rewritten to folders.
BIND_PREFIXES = ("/var/run/secrets/",)
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELD_KEY = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class ConfigError(Exception):
    """A pod that cannot start yet: a missing ConfigMap, Secret, claim or key."""


class PodSandbox:
    """What a pod's containers see on this node (PodRun's base: state is PodRun's)."""

    node: NodeAgent
    pod: Obj
    ns: str
    name: str
    uid: str
    ip: str
    hostname: str
    dir: Path
    hosts_file: Path
    mounts: list[tuple[str, str]]
    binds: list[tuple[str, str]]
    inits: list[ContainerBox]
    mains: list[ContainerBox]

    async def _prepare(self) -> str | None:
        """The pod's volumes as folders; a FailedMount message while one cannot be made."""
        folders: dict[str, str] = {}
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            target = self.dir / "volumes" / name
            try:
                folders[name] = await self._volume(volume, target)
            except ConfigError as exc:
                return f'MountVolume.SetUp failed for volume "{name}" : {exc}'
        mounts, binds = [], []
        boxes = [*self.inits, *self.mains]
        for mount in [m for b in boxes for m in b.spec.get("volumeMounts") or []]:
            host = folders.get(mount["name"])
            if host is None or mount["mountPath"] in ("", "/"):
                continue
            if mount.get("subPath"):
                host = os.path.join(host, mount["subPath"])
                os.makedirs(host, exist_ok=True)
            path = mount["mountPath"].rstrip("/")
            if path.startswith(BIND_PREFIXES):
                Path(path).mkdir(parents=True, exist_ok=True)
                binds.append((host, path))
            else:
                mounts.append((path, host))
        self.mounts = sorted(set(mounts), key=lambda pair: -len(pair[0]))
        self.binds = sorted(set(binds))
        return None

    async def _volume(self, volume: Obj, target: Path) -> str:
        if "persistentVolumeClaim" in volume:
            return await self._claim_folder(volume["persistentVolumeClaim"]["claimName"])
        if "hostPath" in volume:
            return str(volume["hostPath"]["path"])
        files: dict[str, bytes] = {}
        if "configMap" in volume or "secret" in volume:
            kind = "configMap" if "configMap" in volume else "secret"
            files = await self._source(kind, volume[kind])
        elif "projected" in volume:
            for source in volume["projected"].get("sources") or []:
                if "serviceAccountToken" in source:
                    token = source["serviceAccountToken"]
                    files[token["path"]] = (await self._token(token)).encode()
                elif "downwardAPI" in source:
                    files |= self._downward(source["downwardAPI"])
                else:
                    for kind in ("configMap", "secret"):
                        if kind in source:
                            files |= await self._source(kind, source[kind])
        elif "downwardAPI" in volume:
            files = self._downward(volume["downwardAPI"])
        target.mkdir(parents=True, exist_ok=True)
        for path, data in files.items():
            out = target / path
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        return str(target)

    async def _claim_folder(self, claim: str) -> str:
        try:
            pvc = await self.node.api.get(
                f"/api/v1/namespaces/{self.ns}/persistentvolumeclaims/{claim}"
            )
        except ApiError as exc:
            raise ConfigError(f'persistentvolumeclaim "{claim}" not found') from exc
        volume = pvc.get("spec", {}).get("volumeName")
        if not volume or pvc.get("status", {}).get("phase") != "Bound":
            raise ConfigError(f'persistentvolumeclaim "{claim}" is not bound')
        pv = await self.node.api.get(f"/api/v1/persistentvolumes/{volume}")
        source = pv["spec"].get("hostPath") or pv["spec"].get("local")
        if not source:
            raise ConfigError(f'persistentvolume "{volume}" is neither hostPath nor local')
        Path(source["path"]).mkdir(parents=True, exist_ok=True)
        return str(source["path"])

    async def _source(self, kind: str, source: Obj) -> dict[str, bytes]:
        plural, key = ("configmaps", "name") if kind == "configMap" else ("secrets", "secretName")
        name = source.get(key) or source.get("name")
        try:
            obj = await self.node.api.get(f"/api/v1/namespaces/{self.ns}/{plural}/{name}")
        except ApiError as exc:
            if source.get("optional"):
                return {}
            raise ConfigError(f'{kind.lower()} "{name}" not found') from exc
        files = source_files(obj, kind)
        if source.get("items"):
            files = {i["path"]: files[i["key"]] for i in source["items"] if i["key"] in files}
        return files

    async def _token(self, source: Obj) -> str:
        account = self.pod["spec"].get("serviceAccountName") or "default"
        request: Obj = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": int(source.get("expirationSeconds", 3607)),
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": self.name,
                    "uid": self.uid,
                },
            },
        }
        if source.get("audience"):
            request["spec"]["audiences"] = [source["audience"]]
        try:
            answer = await self.node.api.create(
                f"/api/v1/namespaces/{self.ns}/serviceaccounts/{account}/token", request
            )
        except ApiError as exc:
            raise ConfigError(f"failed to fetch token: {exc}") from exc
        return str(answer["status"]["token"])

    def _downward(self, source: Obj) -> dict[str, bytes]:
        return {
            item["path"]: str(self.field(item["fieldRef"]["fieldPath"])).encode()
            for item in source.get("items") or []
            if "fieldRef" in item
        }

    def field(self, path: str) -> str:
        m = self.pod["metadata"]
        if keyed := _FIELD_KEY.match(path):
            return str((m.get(keyed[1]) or {}).get(keyed[2], ""))
        if path in ("metadata.labels", "metadata.annotations"):
            values = m.get(path.split(".")[1]) or {}
            return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
        return {
            "metadata.name": self.name,
            "metadata.namespace": self.ns,
            "metadata.uid": self.uid,
            "spec.nodeName": self.node.name,
            "spec.serviceAccountName": self.pod["spec"].get("serviceAccountName", "default"),
            "status.podIP": self.ip,
            "status.podIPs": self.ip,
            "status.hostIP": "127.0.0.1",
            "status.hostIPs": "127.0.0.1",
        }.get(path, "")

    def write_hosts(self) -> None:
        """The pod's ``/etc/hosts``, rewritten in place (it is bind-mounted)."""
        if not self.ip:
            return
        spec = self.pod["spec"]
        own = [self.hostname]
        if spec.get("subdomain"):
            fqdn = f"{self.hostname}.{spec['subdomain']}.{self.ns}.svc"
            own = [f"{fqdn}.cluster.local", fqdn, self.hostname]
        text = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        text += f"{self.ip}\t{' '.join(own)}\n"
        text += "".join(
            line + "\n" for line in self.node.hosts if not line.startswith(self.ip + "\t")
        )
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.hosts_file, "a+") as f:
            f.seek(0)
            if f.read() != text:
                f.seek(0)
                f.truncate()
                f.write(text)

    def remap(self, text: str) -> str:
        """Container paths under a mount -> host folders."""
        for mount, host in self.mounts:
            text = re.sub(rf"(?<![\w.-]){re.escape(mount)}(?=$|[/\s\"',;:)\]}}])", host, text)
        return text

    async def _command(self, box: ContainerBox) -> tuple[list[str], dict[str, str], str]:
        c = box.spec
        interpreter = self.node.images[c.get("image", "")]
        home = self.dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.pathsep.join(
                [
                    str(self.node.shim(interpreter)),
                    os.path.dirname(interpreter),
                    "/usr/local/bin:/usr/bin:/bin",
                ]
            ),
            "HOME": str(home),
            "HOSTNAME": self.hostname,
            "LANG": "C.UTF-8",
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.node.args.apiserver_port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.node.args.apiserver_port),
            "CLOUDML_TEST_POD_IP": self.ip,
        }
        for source in c.get("envFrom") or []:
            for kind in ("configMap", "secret"):
                ref = source.get(f"{kind}Ref")
                if ref is None:
                    continue
                try:
                    files = await self._source(
                        kind, {"name": ref["name"], "optional": ref.get("optional")}
                    )
                except ConfigError as exc:
                    raise ConfigError(str(exc)) from exc
                for key, data in files.items():
                    env[source.get("prefix", "") + key] = data.decode("utf-8", "replace")
        for var in c.get("env") or []:
            if "valueFrom" in var:
                value = await self._value_from(box, var["valueFrom"])
                if value is None:
                    continue
            else:
                value = expand(str(var.get("value", "")), env)
            env[var["name"]] = value
        gpus = int(((c.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu", 0))
        if gpus and not box.gpus:
            box.gpus = [
                self.node.free_gpus.pop(0) for _ in range(min(gpus, len(self.node.free_gpus)))
            ]
        if box.gpus:
            env["NVIDIA_VISIBLE_DEVICES"] = ",".join(map(str, box.gpus))
        env = {k: self.remap(v) for k, v in env.items()}
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(POD_NETWORK), IMAGE_CODE, env.get("PYTHONPATH")])
        )
        argv = [
            self.remap(expand(str(a), env))
            for a in [*(c.get("command") or []), *(c.get("args") or [])]
        ]
        if not argv:
            argv = ["python3"]
        if _PYTHON.match(os.path.basename(argv[0])):
            argv[0] = interpreter
        cwd = self.remap(c["workingDir"]) if c.get("workingDir") else str(self.dir / "root")
        os.makedirs(cwd, exist_ok=True)
        return argv, env, cwd

    async def _value_from(self, box: ContainerBox, source: Obj) -> str | None:
        if "fieldRef" in source:
            return self.field(source["fieldRef"]["fieldPath"])
        for kind in ("configMap", "secret"):
            ref = source.get(f"{kind}KeyRef")
            if ref is None:
                continue
            files = await self._source(kind, {"name": ref["name"], "optional": ref.get("optional")})
            if ref["key"] in files:
                return files[ref["key"]].decode("utf-8", "replace")
            if ref.get("optional"):
                return None
            raise ConfigError(f"couldn't find key {ref['key']} in {kind} {self.ns}/{ref['name']}")
        if "resourceFieldRef" in source:
            resources = box.spec.get("resources") or {}
            kind, _, name = source["resourceFieldRef"]["resource"].partition(".")
            return str((resources.get(kind) or {}).get(name, "0"))
        return ""


def source_files(obj: Obj, kind: str) -> dict[str, bytes]:
    """A ConfigMap's (text and binary) or a Secret's (base64) data as file contents."""
    files: dict[str, bytes] = {}
    if kind == "configMap":
        files.update({k: str(v).encode() for k, v in (obj.get("data") or {}).items()})
        files.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    else:
        files.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
    return files


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` references to earlier variables (unknown ones stay as written)."""
    return _VAR_REF.sub(lambda m: env.get(m[1], m[0]), text)
