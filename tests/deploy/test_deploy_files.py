"""The files under deploy/ agree with the code: broker topology, compose services, images, Kubernetes."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from carrier_simulator.settings import SimulatorSettings
from mport_shared.messaging.topology import SERVICE_QUEUES, definitions
from order_worker.settings import OrderWorkerSettings
from payroll_worker.settings import PayrollWorkerSettings
from portal_api.settings import PortalSettings
from pydantic_settings import BaseSettings
from sms_simulator.settings import SimulatorSettings as SmsSimulatorSettings
from sms_worker.settings import SmsWorkerSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"

REGENERATE = (
    "regenerate it from the code with\n"
    "  uv run python -m mport_shared.messaging.topology > deploy/rabbitmq/definitions.json\n"
    "  cp deploy/rabbitmq/definitions.json deploy/kubernetes/rabbitmq/definitions.json"
)

# The Python services, their modules, settings and ports (DESIGN section 12).
SERVICES: dict[str, tuple[str, type[BaseSettings], int]] = {
    "portal-api": ("portal_api", PortalSettings, 8000),
    "carrier-simulator": ("carrier_simulator", SimulatorSettings, 8081),
    "sms-simulator": ("sms_simulator", SmsSimulatorSettings, 8082),
    "order-worker": ("order_worker", OrderWorkerSettings, 8091),
    "sms-worker": ("sms_worker", SmsWorkerSettings, 8092),
    "payroll-worker": ("payroll_worker", PayrollWorkerSettings, 8093),
}
# The simulators depend on nothing: /healthz only, and their own prefixed variables.
SIMULATOR_SETTINGS: tuple[type[BaseSettings], ...] = (SimulatorSettings, SmsSimulatorSettings)
SIMULATOR_MODULES = ("carrier_simulator", "sms_simulator")
SETTINGS_BY_MODULE = {module: settings for module, settings, _ in SERVICES.values()}
DATABASE_SERVICES = ("portal-api", "order-worker", "sms-worker", "payroll-worker")
# Read by something other than the settings: uvicorn, or Kubernetes itself ($(POD_IP) in another value).
NON_SETTINGS_ENV = {"FORWARDED_ALLOW_IPS", "POD_IP"}


def env_names(settings: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads (field name or alias, after the prefix)."""
    prefix = str(settings.model_config.get("env_prefix") or "")
    return {(field.alias or prefix + name).upper() for name, field in settings.model_fields.items()}


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def python_module(command: list[str]) -> str:
    assert command[:2] == ["python", "-m"], f"not a `python -m <service>` command: {command}"
    return command[2]


def assert_runnable_module(module: str) -> None:
    assert importlib.util.find_spec(module) is not None, f"no module {module}"
    assert importlib.util.find_spec(f"{module}.__main__") is not None, f"`python -m {module}` has no __main__"


# ---- (a) RabbitMQ definitions ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [DEPLOY / "rabbitmq" / "definitions.json", KUBERNETES / "rabbitmq" / "definitions.json"]
)
def test_definitions_file_is_the_topology_in_code(path: Path) -> None:
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    where = path.relative_to(ROOT)
    assert on_disk == definitions(), f"{where} differs from the topology in code; {REGENERATE}"


def test_local_broker_user_is_the_one_the_services_use() -> None:
    users = json.loads((DEPLOY / "rabbitmq" / "local-users.json").read_text(encoding="utf-8"))
    compose = load_yaml_documents(DEPLOY / "compose.yaml")[0]
    amqp_url = compose["services"]["order-worker"]["environment"]["AMQP_URL"]
    match = re.fullmatch(r"amqp://([^:]+):([^@]+)@rabbitmq:5672/", amqp_url)
    assert match, amqp_url
    user, password = match.groups()
    assert {"name": user, "password": password, "tags": "administrator"} in users["users"]
    assert any(p["user"] == user and p["vhost"] == "/" for p in users["permissions"])


def test_the_payroll_system_user_may_only_consume_from_its_own_queue() -> None:
    on_disk = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text(encoding="utf-8"))
    [user] = [u for u in on_disk["users"] if u["name"] == "payroll-system"]
    assert user["password_hash"] == ""  # no password in git: the operator gives it one
    assert user["tags"] == ""  # no management UI, no administrator
    [permission] = [p for p in on_disk["permissions"] if p["user"] == "payroll-system"]
    assert (permission["configure"], permission["write"], permission["read"]) == (
        "^$",
        "^$",
        "^payroll-system$",
    )
    for other in ("payroll-system.dead-letter", "payroll-worker", "portal-api", "mport.events"):
        assert not re.match(permission["read"], other)
    bound = {b["routing_key"] for b in on_disk["bindings"] if b["destination"] == "payroll-system"}
    assert bound == {"mport.payroll.deduction_recorded.v1", "mport.payroll.deduction_reversed.v1"}
    [queue] = [q for q in on_disk["queues"] if q["name"] == "payroll-system"]
    assert queue["durable"] is True
    assert queue["arguments"]["x-queue-type"] == "quorum"


def test_rabbitmq_config_loads_the_definitions_directory() -> None:
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text(encoding="utf-8")
    assert re.search(r"^load_definitions = /etc/rabbitmq/definitions\.d$", conf, re.MULTILINE)
    plugins = (DEPLOY / "rabbitmq" / "enabled_plugins").read_text(encoding="utf-8").strip()
    assert plugins == "[rabbitmq_management,rabbitmq_prometheus]."


# ---- (b) compose ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    documents = load_yaml_documents(DEPLOY / "compose.yaml")
    assert len(documents) == 1
    return documents[0]


def test_compose_names_every_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {"rabbitmq", "postgres", *SERVICES, "portal-api-seed"}
    expected |= {f"{name}-migrate" for name in DATABASE_SERVICES}
    assert expected <= set(services), f"missing: {sorted(expected - set(services))}"
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3.13-management")
    assert services["postgres"]["image"] == "postgres:16"
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"


def test_compose_commands_are_python_modules_that_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "command" in service:
            assert service["image"] == "mport/service:local", name
            assert_runnable_module(python_module(service["command"]))
    for name, (module, _, _) in SERVICES.items():
        assert compose["services"][name]["command"] == ["python", "-m", module]


@pytest.mark.parametrize("name", list(SERVICES))
def test_compose_ports_match_the_design(compose: dict[str, Any], name: str) -> None:
    module, settings, port = SERVICES[name]
    service = compose["services"][name]
    assert service["ports"] == [f"127.0.0.1:{port}:{port}"]
    simulator = settings in SIMULATOR_SETTINGS
    port_field = "port" if simulator else "http_port"
    assert settings.model_fields[port_field].default == port, f"{module}'s default port is not {port}"
    environment = service["environment"]
    prefix = str(settings.model_config.get("env_prefix") or "")
    listen_port = environment[f"{prefix}PORT" if simulator else "HTTP_PORT"]
    assert int(listen_port) == port
    probe = "/healthz" if simulator else "/readyz"
    assert service["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}{probe}"


def test_compose_environment_names_are_read_by_the_services(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "command" not in service:
            continue
        known = env_names(SETTINGS_BY_MODULE[python_module(service["command"])])
        unknown = set(service.get("environment", {})) - known
        assert not unknown, f"{name} sets variables its settings do not read: {sorted(unknown)}"


def test_compose_databases_are_created_by_the_init_script(compose: dict[str, Any]) -> None:
    init_sql = (DEPLOY / "postgres" / "init-databases.sql").read_text(encoding="utf-8")
    created = set(re.findall(r"CREATE DATABASE (\w+) OWNER", init_sql))
    for name, service in compose["services"].items():
        url = service.get("environment", {}).get("DATABASE_URL")
        if url is None:
            continue
        match = re.fullmatch(r"postgresql\+asyncpg://(\w+):(\w+)@postgres:5432/(\w+)", url)
        assert match, f"{name}: {url}"
        user, password, database = match.groups()
        assert database in created, f"{name} uses database {database}, which init-databases.sql lacks"
        assert f"CREATE ROLE {user} LOGIN PASSWORD '{password}';" in init_sql
        assert f"CREATE DATABASE {database} OWNER {user};" in init_sql


def test_compose_lets_services_drain_before_killing_them(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        grace = compose["services"][name]["stop_grace_period"]
        assert re.fullmatch(r"\d+s", grace), f"{name}: {grace}"
        assert int(grace[:-1]) >= 30, f"{name} is killed {grace} after SIGTERM, before it drained"
    assert compose["services"]["order-worker"]["environment"]["CARRIER_BASE_URL"] == (
        "http://carrier-simulator:8081/tmf-api/productOrderingManagement/v5"
    )
    assert compose["services"]["portal-api"]["environment"]["PORTAL_MODE"] == "local"
    sms_worker = compose["services"]["sms-worker"]["environment"]
    sms_simulator = compose["services"]["sms-simulator"]["environment"]
    assert sms_worker["SMS_GATEWAY_URL"] == "http://sms-simulator:8082/cgi-bin/sendsms"
    assert sms_worker["SMS_DLR_BASE_URL"] == "http://sms-worker:8092"
    assert sms_worker["SMS_GATEWAY_USERNAME"] == sms_simulator["SMS_SIM_USERNAME"]
    assert sms_worker["SMS_GATEWAY_PASSWORD"] == sms_simulator["SMS_SIM_PASSWORD"]


# ---- image ----------------------------------------------------------------------------------


def test_dockerfile_mounts_every_workspace_member() -> None:
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text(encoding="utf-8")
    members = {str(p.relative_to(ROOT)) for p in ROOT.glob("services/*/pyproject.toml")}
    members.add("shared/pyproject.toml")
    mounted = set(re.findall(r"source=(\S+/pyproject\.toml),target=\1", dockerfile))
    assert mounted == members, "the dependency layer must bind-mount each member's pyproject.toml"
    assert "uv sync --frozen --no-dev" in dockerfile
    assert (DEPLOY / "docker" / "Dockerfile.dockerignore").is_file()
    assert (DEPLOY / "docker" / "healthcheck.py").is_file()


# ---- (c) Kubernetes -------------------------------------------------------------------------


def kubernetes_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(KUBERNETES.rglob("*.yaml")):
        for document in load_yaml_documents(path):
            yield path, document


def manifests(kind: str) -> list[dict[str, Any]]:
    kustomization = load_yaml_documents(KUBERNETES / "kustomization.yaml")[0]
    found = []
    for resource in kustomization["resources"]:
        found += [d for d in load_yaml_documents(KUBERNETES / resource) if d["kind"] == kind]
    return found


def test_every_kubernetes_file_parses() -> None:
    documents = list(kubernetes_documents())
    assert len(documents) > 10
    for path, document in documents:
        if path.name == "kustomization.yaml":
            continue
        assert {"apiVersion", "kind", "metadata"} <= set(document), path
        assert document["metadata"].get("name"), path


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml_documents(KUBERNETES / "kustomization.yaml")[0]
    listed = {KUBERNETES / r for r in kustomization["resources"]}
    for path in listed:
        assert path.is_file(), path
    for generator in kustomization["configMapGenerator"]:
        for entry in generator["files"]:
            assert (KUBERNETES / entry.split("=")[-1]).is_file(), entry
    # Examples (Secrets with placeholders, the PostgreSQL operator) are applied by hand.
    manifests_on_disk = {
        p for p in KUBERNETES.rglob("*.yaml") if p.name != "kustomization.yaml" and ".example." not in p.name
    }
    assert manifests_on_disk == listed


def all_containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


@pytest.mark.parametrize("deployment", manifests("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_deployment_has_probes_limits_and_drain_time(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 30
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in pod["containers"]:
        module = python_module(container["command"])
        assert_runnable_module(module)
        ready = "/healthz" if module in SIMULATOR_MODULES else "/readyz"
        assert container["readinessProbe"]["httpGet"]["path"] == ready
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["requests"]["memory"]
        assert container["resources"]["limits"]["memory"]
        port = container["ports"][0]["containerPort"]
        assert port == SERVICES[deployment["metadata"]["name"]][2]
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        if module not in SIMULATOR_MODULES:
            # Metrics on the service's port, or on a port of their own (the portal's is public).
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            metrics_port = ports.get("metrics", port)
            if "metrics" in ports:
                assert env.get("METRICS_PORT") == str(metrics_port)
            assert annotations["prometheus.io/scrape"] == "true"
            assert annotations["prometheus.io/port"] == str(metrics_port)


def test_portal_runs_two_replicas_under_a_disruption_budget() -> None:
    (portal,) = [d for d in manifests("Deployment") if d["metadata"]["name"] == "portal-api"]
    assert portal["spec"]["replicas"] == 2
    (budget,) = manifests("PodDisruptionBudget")
    labels = portal["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_kubernetes_environment_names_are_read_by_the_services() -> None:
    (config,) = [c for c in manifests("ConfigMap") if c["metadata"]["name"] == "mport-config"]
    every_known = set().union(*(env_names(s) for s in SETTINGS_BY_MODULE.values()))
    assert not set(config["data"]) - every_known, "mport-config has keys no service reads"
    pod_specs = [d["spec"]["template"]["spec"] for d in manifests("Deployment") + manifests("Job")]
    for pod in pod_specs:
        for container in all_containers(pod):
            module = python_module(container["command"])
            assert_runnable_module(module)
            names = {e["name"] for e in container.get("env", [])}
            unknown = names - env_names(SETTINGS_BY_MODULE[module]) - NON_SETTINGS_ENV
            assert not unknown, f"{container['name']}: {sorted(unknown)}"


def test_rabbitmq_cluster_has_three_nodes_and_imports_the_topology() -> None:
    (cluster,) = manifests("RabbitmqCluster")
    assert cluster["spec"]["replicas"] == 3
    assert "load_definitions = /etc/rabbitmq/definitions.d" in cluster["spec"]["rabbitmq"]["additionalConfig"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) is not installed")
def test_kustomization_builds() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(KUBERNETES)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(result.stdout) if d}
    assert {"Deployment", "Job", "ScaledObject", "RabbitmqCluster", "PodDisruptionBudget"} <= kinds


# ---- (d) KEDA -------------------------------------------------------------------------------


def test_every_scaled_object_watches_a_queue_of_the_topology() -> None:
    queues = {q["name"] for q in json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())["queues"]}
    deployments = {d["metadata"]["name"] for d in manifests("Deployment")}
    scaled = manifests("ScaledObject")
    watched = set()
    for scaled_object in scaled:
        assert scaled_object["spec"]["scaleTargetRef"]["name"] in deployments
        for trigger in scaled_object["spec"]["triggers"]:
            assert trigger["type"] == "rabbitmq"
            queue = trigger["metadata"]["queueName"]
            assert queue in queues, f"{scaled_object['metadata']['name']} watches unknown queue {queue}"
            watched.add(queue)
    workers = {q.name for q in SERVICE_QUEUES} - {"portal-api"}
    assert watched == workers
