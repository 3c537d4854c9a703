"""The hub side: profiles, tenant objects and the notebook pod (through KubeSpawner's own pod
code), the spawn form's quota check, `cloudml hub manifests`, and idle culling limits."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from datetime import timedelta

import kubernetes_validate
import pytest
import yaml
from cloudml_testkit import REPO
from hypothesis import given, settings
from hypothesis import strategies as st
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from jupyter_cloudml.backends.kubernetes import rbac
from jupyter_cloudml.backends.kubernetes.names import is_dns_label
from jupyter_cloudml.cli import main
from jupyter_cloudml.exceptions import InvalidSpec, QuotaExceeded
from jupyter_cloudml.hub import configure, culler
from jupyter_cloudml.hub.manifests import normalized_username, offline_spawner, preview
from jupyter_cloudml.hub.profiles import build_profile_list, find_profile, profile_gpus
from jupyter_cloudml.hub.tenant import Tenant, merged_quota, tenant_objects

VERSIONS = ("1.30.0", "1.37.0")
GIB = 1024**3


def strict_valid(doc: dict) -> None:
    for version in VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


def hub_config(**spawner: object) -> Config:
    config = Config()
    for key, value in spawner.items():
        setattr(config.CloudMLSpawner, key, value)
    return config


# --- profiles -----------------------------------------------------------------------------------


def test_profiles_offer_cpu_and_every_count_of_every_gpu_type():
    found = build_profile_list(["a100", "l4"], [1, 2, 4, 8], 4.0, 24 * GIB, "1 CPU, no GPU")
    assert [p["slug"] for p in found] == [
        "cpu",
        *(f"gpu-a100-{n}" for n in (1, 2, 4, 8)),
        *(f"gpu-l4-{n}" for n in (1, 2, 4, 8)),
    ]
    assert found[0]["default"] and found[0]["kubespawner_override"] == {}
    four = find_profile(found, "gpu-l4-4")
    override = four["kubespawner_override"]
    assert profile_gpus(four) == 4
    assert override["extra_resource_limits"] == {"nvidia.com/gpu": "4"}
    assert override["node_selector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert override["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert override["cpu_guarantee"] == 16.0
    assert override["mem_guarantee"] == override["mem_limit"] == 96 * GIB
    assert four["display_name"] == "4 x L4" and "NVIDIA-L4" in four["description"]


def test_profile_mistakes_are_named():
    with pytest.raises(InvalidSpec, match="not a valid node label value"):
        build_profile_list(["a100 80gb"], [1], 4.0, GIB, "")
    with pytest.raises(InvalidSpec, match="at least 1"):
        build_profile_list(["a100"], [0], 4.0, GIB, "")
    with pytest.raises(InvalidSpec, match=r"no profile 'gpu-v100-1'; choose one of: cpu, gpu-a"):
        find_profile(build_profile_list(["a100"], [1], 4.0, GIB, ""), "gpu-v100-1")


# --- tenant objects -----------------------------------------------------------------------------


def test_group_quotas_raise_the_default_the_largest_wins():
    default = {"requests.nvidia.com/gpu": "4", "requests.cpu": "32"}
    groups = {
        "research": {"requests.nvidia.com/gpu": "16"},
        "interns": {"requests.nvidia.com/gpu": "1", "pods": "10"},
        "big-cpu": {"requests.cpu": "64000m"},
    }
    assert merged_quota(default, groups, ["interns"]) == {
        "requests.nvidia.com/gpu": "4",
        "requests.cpu": "32",
        "pods": "10",
    }
    assert merged_quota(default, groups, ["interns", "research", "big-cpu"]) == {
        "requests.nvidia.com/gpu": "16",
        "requests.cpu": "64000m",
        "pods": "10",
    }


def test_tenant_objects_are_strict_valid_and_stay_in_the_namespace():
    tenant = Tenant(
        user="alice.smith",
        namespace="cloudml-alice",
        quota={"requests.nvidia.com/gpu": "2", "pods": "20"},
        limits={"defaultRequest": {"cpu": "250m"}, "default": {"memory": "8Gi"}},
    )
    objects = tenant_objects(tenant)
    kinds = [o["kind"] for o in objects]
    assert kinds[0] == "Namespace" and objects[0]["metadata"]["name"] == "cloudml-alice"
    assert kinds.count("Role") == kinds.count("RoleBinding") == kinds.count("ServiceAccount") == 2
    assert not {"ClusterRole", "ClusterRoleBinding"} & set(kinds)
    for obj in objects:
        strict_valid(obj)
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "jupyter-cloudml"
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "cloudml-alice"
    quota = next(o for o in objects if o["kind"] == "ResourceQuota")
    assert quota["spec"]["hard"] == {"pods": "20", "requests.nvidia.com/gpu": "2"}
    roles = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Role"}
    assert roles["cloudml-notebook"]["rules"] == rbac.NOTEBOOK_RULES
    assert roles["cloudml-study-driver"]["rules"] == rbac.JOB_RULES
    for binding in (o for o in objects if o["kind"] == "RoleBinding"):
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": binding["metadata"]["name"],
        }
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": binding["metadata"]["name"],
                "namespace": "cloudml-alice",
            }
        ]


def test_roles_grant_no_cluster_wide_or_wildcard_rights():
    for rules in (rbac.NOTEBOOK_RULES, rbac.JOB_RULES):
        for rule in rules:
            assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"]
            assert not {"nodes", "namespaces", "clusterroles", "clusterrolebindings"} & set(
                rule["resources"]
            )
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])
            if set(rule["resources"]) & {"roles", "rolebindings", "serviceaccounts"}:
                assert rule["verbs"] == ["get"]


def test_bad_tenant_settings_are_refused():
    with pytest.raises(InvalidSpec, match="not a valid Kubernetes name"):
        Tenant(user="bob", namespace="Cloudml_Bob", quota={})
    with pytest.raises(InvalidSpec, match=r"requests\.cpu: 'lots' is not a Kubernetes quantity"):
        Tenant(user="bob", namespace="cloudml-bob", quota={"requests.cpu": "lots"})
    with pytest.raises(InvalidSpec, match="needs a username"):
        Tenant(user="", namespace="cloudml-x", quota={})


# --- usernames ----------------------------------------------------------------------------------


def test_usernames_are_read_as_jupyterhub_stores_them():
    assert normalized_username("Alice.Smith") == "alice.smith"
    for bad in ("", "   "):
        with pytest.raises(InvalidSpec, match="not a valid JupyterHub username"):
            normalized_username(bad)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=80), min_size=2, max_size=2, unique=True))
def test_any_two_usernames_get_distinct_valid_namespaces(names):
    spawners = [offline_spawner(Config(), name) for name in names]
    namespaces = [s.namespace for s in spawners]
    for namespace in namespaces:
        assert is_dns_label(namespace) and namespace.startswith("cloudml-"), namespace
    assert namespaces[0] != namespaces[1]


# --- the notebook pod ---------------------------------------------------------------------------


def test_preview_of_a_gpu_profile_has_the_quota_the_role_and_the_gpu_pod():
    found = preview("Alice.Smith", "gpu-a100-1")
    assert found.user == "alice.smith"
    assert is_dns_label(found.namespace)
    for obj in found.objects:
        strict_valid(obj)
    pod = found.objects[-1]
    assert pod["kind"] == "Pod" and pod["metadata"]["namespace"] == found.namespace
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "cloudml-notebook"
    assert spec["automountServiceAccountToken"] is True
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    container = spec["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CLOUDML_BACKEND"] == "kubernetes"
    assert env["CLOUDML_NAMESPACE"] == found.namespace
    assert env["CLOUDML_IMAGE"] == "jupyter-cloudml/trainer:latest"
    assert env["JUPYTERHUB_USER"] == "alice.smith"


@pytest.mark.asyncio
async def test_shared_storage_is_a_tenant_claim_mounted_by_the_notebook():
    from jupyter_cloudml.hub.spawner import plain

    config = hub_config(shared_storage_class="nfs-client", shared_storage_size="20Gi")
    spawner = offline_spawner(config, "carol")
    claim = next(
        o for o in tenant_objects(spawner.tenant()) if o["kind"] == "PersistentVolumeClaim"
    )
    strict_valid(claim)
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["storageClassName"] == "nfs-client"
    await spawner.apply_profile()
    await spawner.apply_profile()  # spawning again adds nothing twice
    pod = await plain(await spawner.get_pod_manifest())
    pod["metadata"]["namespace"] = spawner.namespace
    strict_valid(pod)
    assert pod["spec"]["volumes"] == [
        {"name": "cloudml-shared", "persistentVolumeClaim": {"claimName": "cloudml-shared"}}
    ]
    assert pod["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "cloudml-shared", "mountPath": "/mnt/cloudml"}
    ]
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["CLOUDML_SHARED_CLAIM"] == "cloudml-shared"
    assert env["CLOUDML_SHARED_MOUNT"] == "/mnt/cloudml"


def test_a_profile_above_the_quota_says_which_quota_and_by_how_much():
    with pytest.raises(QuotaExceeded) as caught:
        preview("bob", "gpu-a100-8")
    assert str(caught.value) == (
        "profile '8 x A100' does not fit: requests.nvidia.com/gpu: asks 8, over quota "
        "'cloudml-quota' of namespace cloudml-bob by 4 (it allows 4, 0 in use)"
    )


def test_group_quota_lets_a_group_member_spawn_the_big_profile(tmp_path):
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        "c.CloudMLSpawner.gpu_types = ['h100']\n"
        "c.CloudMLSpawner.group_quotas = {'research': {'requests.nvidia.com/gpu': '8'}}\n"
    )
    found = preview("bob", "gpu-h100-8", ["research"], str(config))
    quota = next(o for o in found.objects if o["kind"] == "ResourceQuota")
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "8"
    assert found.objects[-1]["spec"]["nodeSelector"] == {
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"
    }


# KubeSpawner's whole constructor, as the hub runs it: it loads a cluster configuration (here a
# kubeconfig naming the in-cluster API server; nothing connects) and makes its API client in the
# running event loop. A process of its own, as KubeSpawner loads its configuration once.
HUB_SPAWN = """
import asyncio, json, sys
from traitlets.config.loader import PyFileConfigLoader
from jupyter_cloudml.hub import manifests
from jupyter_cloudml.hub.spawner import CloudMLSpawner

def constructed(spawner):
    attributes = {k: v for k, v in vars(spawner).items() if k != "api"}
    values = {}
    for name, value in {**spawner.trait_values(), **attributes}.items():
        try:
            values[name] = json.loads(json.dumps(value))
        except (TypeError, ValueError):
            continue  # objects: the user, the hub, callables
    return {"attributes": sorted(attributes), "values": values}

async def main(config_file, username, group, slug):
    config = PyFileConfigLoader(config_file).load_config()
    user = manifests.hub_user(username, [group])
    hub = manifests.zero_to_jupyterhub_hub()
    spawners = {
        "hub": CloudMLSpawner(config=config, user=user, hub=hub, orm_spawner=user.orm_spawners[""]),
        "offline": manifests.offline_spawner(config, username, [group]),
    }
    assert spawners["hub"].api is not None and not hasattr(spawners["offline"], "api")
    found = {key: constructed(spawner) for key, spawner in spawners.items()}
    for key, spawner in spawners.items():
        found[key]["objects"] = (await manifests.spawn_preview(spawner, slug)).objects
    print(json.dumps(found))

asyncio.run(main(*sys.argv[1:]))
"""


def test_the_preview_shows_the_pod_the_hubs_own_spawner_makes(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "hub", "cluster": {"server": "https://kubernetes.default.svc"}}
                ],
                "users": [{"name": "hub", "user": {"token": "unused"}}],
                "contexts": [{"name": "hub", "context": {"cluster": "hub", "user": "hub"}}],
                "current-context": "hub",
            }
        )
    )
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        "c.CloudMLSpawner.gpu_types = ['h100']\n"
        "c.CloudMLSpawner.group_quotas = {'research': {'requests.nvidia.com/gpu': '8'}}\n"
        "c.CloudMLSpawner.shared_storage_class = 'nfs-client'\n"
        "c.KubeSpawner.pod_name_template = 'nb-{username}-{userid}'\n"
        "c.KubeSpawner.working_dir = '/home/{username}'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE_")}
    env["KUBECONFIG"] = str(kubeconfig)  # read by KubeSpawner when kubernetes_asyncio loads
    argv = [str(config), "carol@example.com", "research", "gpu-h100-8"]
    run = subprocess.run(
        [sys.executable, "-c", HUB_SPAWN, *argv], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    hub, offline = found["hub"], found["offline"]
    assert offline["attributes"] == hub["attributes"]  # all KubeSpawner sets but its client
    assert offline["values"] == hub["values"]
    assert hub["values"]["pod_name"].startswith("nb-carol-example-com-")
    assert offline["objects"] == hub["objects"]
    shown = preview("carol@example.com", "gpu-h100-8", ["research"], str(config))
    assert json.loads(json.dumps(shown.objects)) == hub["objects"]
    pod = hub["objects"][-1]
    assert pod["metadata"]["name"] == hub["values"]["pod_name"]
    assert pod["spec"]["containers"][0]["workingDir"] == hub["values"]["working_dir"]


# --- the command line ---------------------------------------------------------------------------


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_prints_strict_valid_yaml_for_review(capsys):
    argv = ["hub", "manifests", "--user", "Alice.Smith", "--profile", "gpu-a100-1"]
    code, out, err = run_cli(capsys, *argv, "--output", "yaml")
    assert code == 0, err
    assert out.startswith("# JupyterHub user 'alice.smith', namespace cloudml-alice-smith-")
    docs = list(yaml.safe_load_all(io.StringIO(out)))
    assert [d["kind"] for d in docs] == [
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Pod",
    ]
    for doc in docs:
        strict_valid(doc)
    code, out, _ = run_cli(capsys, *argv, "--output", "json")
    assert code == 0 and json.loads(out) == docs


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--user", "bob", "--profile", "gpu-a100-3"], 2, "no profile 'gpu-a100-3'; choose one"),
        (["--user", ""], 2, "'' is not a valid JupyterHub username"),
        (["--profile", "cpu"], 2, "--user"),
        (["--user", "bob", "--output", "text"], 2, "invalid choice: 'text'"),
        (["--user", "bob", "--profil", "cpu"], 2, "unknown option '--profil' (did you mean"),
        (["--user", "bob", "--config", "/nowhere/jupyterhub_config.py"], 2, "no such file"),
        (["--user", "bob", "--profile", "gpu-a100-8"], 1, "over quota 'cloudml-quota'"),
    ],
)
def test_cli_mistakes_get_one_clear_line(capsys, argv, code, message):
    got, out, err = run_cli(capsys, "hub", "manifests", *argv)
    assert got == code and out == ""
    assert err.startswith("cloudml: error: ") and message in err, err


# --- idle culling -------------------------------------------------------------------------------


def test_gpu_servers_are_culled_sooner_than_cpu_servers():
    spawner = offline_spawner(Config(), "dave")
    cpu_state = spawner.get_state()
    assert cpu_state["cloudml"] == {"gpus": 0, "idle_timeout": 3600}
    spawner.extra_resource_limits = {"nvidia.com/gpu": "2"}
    gpu_state = spawner.get_state()
    assert gpu_state["cloudml"] == {"gpus": 2, "idle_timeout": 1800}
    restarted = offline_spawner(Config(), "dave")  # the hub restarted: state is all it has
    restarted.load_state(gpu_state)
    assert restarted.get_state()["cloudml"]["idle_timeout"] == 1800

    idle = timedelta(seconds=2000)
    assert culler.cull_arbiter(inactive=idle, inactive_limit=3600, server={"state": gpu_state})
    assert not culler.cull_arbiter(inactive=idle, inactive_limit=3600, server={"state": cpu_state})
    assert not culler.cull_arbiter(inactive=idle, inactive_limit=3600, server={})
    assert culler.cull_arbiter(inactive=timedelta(hours=2), inactive_limit=3600, server={})


def test_configure_runs_the_culler_with_our_arbiter():
    c = Config()
    configure(c, cull_every=60)
    assert c.JupyterHub.spawner_class == "jupyter_cloudml.hub.spawner.CloudMLSpawner"
    (service,) = c.JupyterHub.services.get_value([])
    assert service["name"] == "cloudml-idle-culler"
    assert service["command"][1:3] == ["-m", "jupyterhub_idle_culler"]
    assert "--cull-every=60" in service["command"]
    (role,) = c.JupyterHub.load_roles.get_value([])
    assert role["services"] == ["cloudml-idle-culler"] and "admin:server_state" in role["scopes"]
    config_arg = next(a for a in service["command"] if a.startswith("--config="))
    loaded = PyFileConfigLoader(config_arg.split("=", 1)[1]).load_config()
    assert loaded.IdleCuller.cull_arbiter_hook is culler.cull_arbiter


def test_spawner_is_registered_for_jupyterhub():
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="jupyterhub.spawners") if e.name == "cloudml"]
    assert entry.load().__name__ == "CloudMLSpawner"
    assert re.match(r"jupyter_cloudml\.hub\.spawner:", entry.value)


# --- the hub's own rights -----------------------------------------------------------------------


def grants(rules: list[dict]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_hub_holds_every_right_it_grants_tenants_and_nothing_wildcard(capsys):
    code, out, err = run_cli(capsys, "hub", "rbac", "--hub-namespace", "jhub")
    assert code == 0, err
    role, binding = list(yaml.safe_load_all(io.StringIO(out)))
    for doc in (role, binding):
        strict_valid(doc)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hub", "namespace": "jhub"}]
    held = grants(role["rules"])
    # Kubernetes refuses to create a Role granting rights its creator does not hold
    assert grants(rbac.NOTEBOOK_RULES) | grants(rbac.JOB_RULES) <= held
    for kind in ("namespaces", "resourcequotas", "limitranges", "serviceaccounts"):
        assert {("", kind, "create"), ("", kind, "get")} <= held
    assert {("rbac.authorization.k8s.io", r, "create") for r in ("roles", "rolebindings")} <= held
    assert not any("*" in grant for grant in held)
    assert not {verb for *_, verb in held} & {"escalate", "bind", "impersonate"}


# --- the Helm values ----------------------------------------------------------------------------


def test_helm_values_configure_the_hub_as_documented():

    from jupyter_cloudml.hub.spawner import CloudMLSpawner

    values = yaml.safe_load((REPO / "helm" / "values.yaml").read_text())
    c = Config()
    exec(values["hub"]["extraConfig"]["cloudml"], {"c": c})  # what the chart's hub runs
    assert c.JupyterHub.spawner_class == "jupyter_cloudml.hub.spawner.CloudMLSpawner"
    settings_ = values["hub"]["config"]["CloudMLSpawner"]
    assert set(settings_) <= set(CloudMLSpawner.class_trait_names(config=True))
    c.CloudMLSpawner = Config(settings_)
    spawner = offline_spawner(c, "erin", ["research"])
    slugs = [p["slug"] for p in spawner.initial_profiles()]
    assert "gpu-l4-8" in slugs and "gpu-a100-1" in slugs
    assert spawner.tenant().quota["requests.nvidia.com/gpu"] == "16"
    assert spawner.tenant().shared is not None
    assert values["cull"]["enabled"] is False
    assert values["hub"]["networkPolicy"]["interNamespaceAccessLabels"] == "accept"
    namespace = tenant_objects(spawner.tenant())[0]
    assert namespace["metadata"]["labels"]["hub.jupyter.org/network-access-hub"] == "true"


def test_the_documented_chart_is_the_one_the_hub_image_extends():

    root = REPO
    bases = {
        m
        for path in (root / "images").rglob("Dockerfile*")
        for m in re.findall(r"quay\.io/jupyterhub/k8s-hub:(\S+)", path.read_text())
    }
    documented = {
        m
        for path in (root / "README.md", root / "helm" / "values.yaml")
        for m in re.findall(r"jupyterhub/jupyterhub --version (\S+)", path.read_text())
    }
    assert len(bases) == 1 and documented == bases, (bases, documented)
