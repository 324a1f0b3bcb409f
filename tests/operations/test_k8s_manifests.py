"""The Kubernetes manifests: the base and the example overlay, rendered as kustomize would (resources,
strategic-merge patches, namespace, images), validated against the Kubernetes schemas (kubernetes-validate)
and checked for what the deployment relies on."""

from __future__ import annotations

import copy
from dataclasses import fields
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

import celeryconfig
from settings import Settings
from tests.conftest import ROOT

pytestmark = pytest.mark.pure

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"
CRD_GROUPS = ("keda.sh/",)  # KEDA's kinds are not in the Kubernetes schemas: checked by hand below
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


def key(doc: dict) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def merge(base, patch):
    """Strategic merge as kustomize does it for these manifests: maps deep, lists of named maps by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for name, value in patch.items():
            merged[name] = merge(base[name], value) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i
                                                                  for i in base + patch):
        merged = {item["name"]: item for item in base}
        for item in patch:
            merged[item["name"]] = merge(merged[item["name"]], item) if item["name"] in merged else item
        return list(merged.values())
    return patch


def render(folder: Path) -> list[dict]:
    """The objects `kubectl kustomize folder` would print."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs = []
    for resource in spec.get("resources", []):
        path = (folder / resource).resolve()
        docs += render(path) if path.is_dir() else [d for d in yaml.safe_load_all(path.read_text()) if d]
    by_key = {key(doc): doc for doc in docs}
    assert len(by_key) == len(docs), f"{folder}: two objects of the same kind and name"
    for patch in spec.get("patches", []):
        for doc in yaml.safe_load_all((folder / patch["path"]).read_text()):
            assert key(doc) in by_key, f"{patch['path']} patches {key(doc)}, which the base lacks"
            by_key[key(doc)] = merge(by_key[key(doc)], doc)
    docs = [copy.deepcopy(doc) for doc in by_key.values()]
    for doc in docs:
        for label in spec.get("labels", []):
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
        if "namespace" in spec and doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = spec["namespace"]
        for container in containers(doc):
            for image in spec.get("images", []):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image.get('newTag', 'latest')}"
    return docs


def pod_spec(doc: dict) -> dict | None:
    return doc["spec"]["template"]["spec"] if doc["kind"] in ("Deployment", "Job") else None


def containers(doc: dict) -> list[dict]:
    spec = pod_spec(doc)
    return spec["containers"] if spec else []


@pytest.fixture(scope="module", params=["base", "overlays/example"])
def rendered(request) -> dict:
    return {key(doc): doc for doc in render(K8S / request.param)}


def test_every_object_is_valid_for_kubernetes(rendered):
    builtin = [doc for doc in rendered.values() if not doc["apiVersion"].startswith(CRD_GROUPS)]
    assert len(builtin) >= 15
    for doc in builtin:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{key(doc)}: {exc.message} at {'.'.join(map(str, exc.path))}")


def test_the_overlay_sets_namespace_and_image():
    docs = render(K8S / "overlays" / "example")
    assert {doc["metadata"].get("namespace") for doc in docs} == {"shop"}
    images = {c["image"] for doc in docs for c in containers(doc)}
    assert images == {"registry.example.com/shop/backend:1.0.0"}
    web = {key(doc): doc for doc in docs}[("Deployment", "web")]
    assert web["spec"]["replicas"] == 3
    assert web["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_web_probes_budget_and_autoscaler(rendered):
    [web] = containers(rendered[("Deployment", "web")])
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    hpa = rendered[("HorizontalPodAutoscaler", "web")]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "web" and hpa["metrics"][0]["resource"]["name"] == "cpu"


def test_one_beat_and_every_queue_consumed_once_and_scaled_on_its_length(rendered):
    beat = rendered[("Deployment", "beat")]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    consumed = []
    for (kind, name), doc in rendered.items():
        if kind == "Deployment" and name.startswith("worker-"):
            command = containers(doc)[0]["command"]
            queues = command[command.index("-Q") + 1].split(",")
            consumed += queues
            assert ("PodDisruptionBudget", name) in rendered
            scaled = rendered[("ScaledObject", name)]["spec"]
            assert scaled["scaleTargetRef"]["name"] == name
            assert sorted(t["metadata"]["queueName"] for t in scaled["triggers"]) == sorted(queues)
            for trigger in scaled["triggers"]:
                assert trigger["type"] == "rabbitmq"
                assert ("TriggerAuthentication", trigger["authenticationRef"]["name"]) in rendered
    assert sorted(consumed) == sorted(celeryconfig.QUEUES)
    assert ("PodDisruptionBudget", "web") in rendered and ("Job", "migrate") in rendered
    assert ("Service", "flower") in rendered


def test_the_indexer_runs_as_in_the_procfile(rendered):
    """Search indexing has a Deployment of its own, one process a pod on the `search` queue alone, like the
    Procfile's `indexer`: an import's indexing must not wait for a process its merge parts hold."""
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    local = procfile["indexer"].split()
    [indexer] = containers(rendered[("Deployment", "worker-indexer")])
    command = indexer["command"]
    assert command[command.index("-Q") + 1] == local[local.index("-Q") + 1] == "search"
    assert command[command.index("--concurrency") + 1] == local[local.index("-c") + 1] == "1"
    assert command[command.index("-n") + 1] == local[local.index("-n") + 1]
    for name, doc in rendered.items():
        if name[0] == "Deployment" and name[1] != "worker-indexer" and containers(doc):
            consumer = containers(doc)[0]["command"]
            assert "-Q" not in consumer or "search" not in consumer[consumer.index("-Q") + 1].split(","), name


def test_the_realtime_gateway_runs_as_in_the_procfile_behind_a_service(rendered):
    """The WebSocket gateway of the Procfile's `realtime`, listening on every interface at the port its Service
    and probes name, with a budget that keeps one replica through a node's drain."""
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    [gateway] = containers(rendered[("Deployment", "realtime")])
    assert gateway["command"] == procfile["realtime"].split()
    config = rendered[("ConfigMap", "shop-config")]["data"]
    assert config["WS_HOST"] == "0.0.0.0"  # noqa: S104 - a pod listens on its own interfaces
    [port] = gateway["ports"]
    assert port["containerPort"] == int(config["WS_PORT"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert gateway[probe]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    service = rendered[("Service", "realtime")]["spec"]
    assert service["ports"][0]["targetPort"] == port["name"]
    assert service["selector"] == rendered[("Deployment", "realtime")]["spec"]["selector"]["matchLabels"]
    assert rendered[("PodDisruptionBudget", "realtime")]["spec"]["minAvailable"] == 1
    assert rendered[("Deployment", "realtime")]["spec"]["replicas"] >= 2


def test_pods_run_as_non_root_read_only_with_limits(rendered):
    pods = [doc for doc in rendered.values() if pod_spec(doc)]
    assert len(pods) >= 7
    for doc in pods:
        assert pod_spec(doc)["securityContext"]["runAsNonRoot"] is True, key(doc)
        for container in containers(doc):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
            assert "/app/var" in {mount["mountPath"] for mount in container["volumeMounts"]}  # the writable folder


def test_configuration_names_only_known_settings(rendered):
    known = {field.name for field in fields(Settings)}
    for kind in ("ConfigMap", "Secret"):
        for (found_kind, name), doc in rendered.items():
            if found_kind == kind:
                values = doc.get("data") or doc.get("stringData") or {}
                assert set(values) <= known, f"{name}: unknown settings {set(values) - known}"
    for doc in rendered.values():
        for container in containers(doc):
            for source in container["envFrom"]:
                ref = source.get("configMapRef") or source.get("secretRef")
                kind = "ConfigMap" if "configMapRef" in source else "Secret"
                assert (kind, ref["name"]) in rendered


def test_the_image_is_multi_stage_non_root_with_a_health_check():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[0].endswith(" AS build")
    assert any(line.startswith("COPY --from=build ") for line in lines)
    [user] = [line for line in lines if line.startswith("USER ")]
    uid = user.split()[1].split(":")[0]
    assert uid not in ("0", "root")
    for doc in render(K8S / "base"):
        if pod_spec(doc):
            assert str(pod_spec(doc)["securityContext"]["runAsUser"]) == uid, key(doc)
    assert any(line.startswith("HEALTHCHECK ") and "/healthz" in line for line in lines)
    assert lines.index(user) > max(i for i, line in enumerate(lines) if line.startswith(("RUN ", "COPY ")))


def test_the_secret_names_every_value_production_refuses_to_run_without(rendered):
    """Filled in (every placeholder replaced by a real-looking value), the manifests' configuration passes
    the production check: none of the secrets it demands, the backup passphrase included, is missing."""
    config = rendered[("ConfigMap", "shop-config")]["data"]
    secret = rendered[("Secret", "shop-secrets")]["stringData"]
    assert config["APP_ENV"] == "production"
    filled = {name: value if "://" in value else "x" * 40 for name, value in secret.items()}
    assert Settings.from_env({**config, **filled}).problems() == []


def test_the_orders_worker_runs_its_tasks_in_threads_as_in_the_procfile(rendered):
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    local = procfile["orders"].split()
    [orders] = containers(rendered[("Deployment", "worker-orders")])
    command = orders["command"]
    assert command[command.index("--pool") + 1] == local[local.index("--pool") + 1] == "custom"
    pool = "CELERY_CUSTOM_WORKER_POOL=tasks.pools:ThreadPool"
    assert pool in command and pool in local
    assert command[command.index("--concurrency") + 1] == local[local.index("-c") + 1]
