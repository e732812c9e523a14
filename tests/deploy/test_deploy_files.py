"""The files under deploy/ agree with the code: broker topology, compose services, images, Kubernetes."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from carrier_simulator.settings import SimulatorSettings
from identity_simulator.settings import IdentitySimSettings as IdentitySimulatorSettings
from mport_shared.messaging.topology import SERVICE_QUEUES, definitions
from order_worker.settings import OrderWorkerSettings
from payroll_worker.settings import PayrollWorkerSettings
from portal_api.settings import PortalSettings
from pydantic_settings import BaseSettings
from sms_simulator.settings import SimulatorSettings as SmsSimulatorSettings
from sms_worker.settings import SmsWorkerSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"  # the development / test cluster: the base and the simulators
BASE = KUBERNETES / "base"
PRODUCTION = KUBERNETES / "overlays" / "production"

REGENERATE = (
    "regenerate it from the code with\n"
    "  uv run python -m mport_shared.messaging.topology > deploy/rabbitmq/definitions.json\n"
    "  cp deploy/rabbitmq/definitions.json deploy/kubernetes/base/rabbitmq/definitions.json"
)

# The Python services, their modules, settings and ports (DESIGN section 12).
SERVICES: dict[str, tuple[str, type[BaseSettings], int]] = {
    "portal-api": ("portal_api", PortalSettings, 8000),
    "carrier-simulator": ("carrier_simulator", SimulatorSettings, 8081),
    "sms-simulator": ("sms_simulator", SmsSimulatorSettings, 8082),
    "identity-simulator": ("identity_simulator", IdentitySimulatorSettings, 8083),
    "order-worker": ("order_worker", OrderWorkerSettings, 8091),
    "sms-worker": ("sms_worker", SmsWorkerSettings, 8092),
    "payroll-worker": ("payroll_worker", PayrollWorkerSettings, 8093),
}
# The simulators depend on nothing: /healthz only, and their own prefixed variables.
SIMULATOR_SETTINGS: tuple[type[BaseSettings], ...] = (
    SimulatorSettings,
    SmsSimulatorSettings,
    IdentitySimulatorSettings,
)
SIMULATOR_MODULES = ("carrier_simulator", "sms_simulator", "identity_simulator")
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
    "path", [DEPLOY / "rabbitmq" / "definitions.json", BASE / "rabbitmq" / "definitions.json"]
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


def test_compose_signs_the_portal_in_with_the_identity_simulator(compose: dict[str, Any]) -> None:
    from identity_simulator.settings import DEFAULT_CLIENTS

    portal = compose["services"]["portal-api"]["environment"]
    simulator = compose["services"]["identity-simulator"]["environment"]
    assert portal["OIDC_ISSUER"] == simulator["IDENTITY_SIM_ISSUER"] == "http://identity-simulator:8083"
    (client,) = [c for c in DEFAULT_CLIENTS if c.client_id == portal["OIDC_CLIENT_ID"]]
    assert client.client_secret == portal["OIDC_CLIENT_SECRET"]
    assert f"{portal['PUBLIC_URL']}/auth/oidc/callback" in client.redirect_uris


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
# Three kustomizations: base/ (no simulators; not applied alone), deploy/kubernetes (a development
# or test cluster: the base and the simulators) and overlays/production. They are rendered here in
# Python (resources, generated ConfigMaps, patches, images: what these files use of kustomize), so
# the checks run without kubectl; where kubectl is installed, its own build must agree.

KUSTOMIZATIONS = {"development": KUBERNETES, "production": PRODUCTION}


def kubernetes_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(KUBERNETES.rglob("*.yaml")):
        for document in load_yaml_documents(path):
            yield path, document


def kustomization(directory: Path) -> dict[str, Any]:
    return load_yaml_documents(directory / "kustomization.yaml")[0]


def used_files(directory: Path) -> set[Path]:
    """Every file a kustomization reads, through the bases it builds on."""
    spec = kustomization(directory)
    files = {directory / "kustomization.yaml"}
    for resource in spec.get("resources", []):
        path = (directory / resource).resolve()
        assert path.exists(), f"{directory.relative_to(ROOT)} lists {resource}, which does not exist"
        files |= used_files(path) if path.is_dir() else {path}
    for generator in spec.get("configMapGenerator", []):
        files |= {(directory / entry.split("=")[-1]).resolve() for entry in generator["files"]}
    files |= {(directory / p["path"]).resolve() for p in spec.get("patches", []) if "path" in p}
    return files


def _json_pointer_replace(document: dict[str, Any], pointer: str, value: Any) -> None:
    *parents, last = pointer.lstrip("/").split("/")
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        assert last in node, f"nothing at {pointer} to replace"
        node[last] = value


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def render(directory: Path) -> list[dict[str, Any]]:
    """What `kubectl kustomize <directory>` builds, for the features these kustomizations use.
    A patch that matches nothing fails (kustomize would skip it silently)."""
    spec = kustomization(directory)
    documents: list[dict[str, Any]] = []
    for resource in spec.get("resources", []):
        path = (directory / resource).resolve()
        documents += render(path) if path.is_dir() else load_yaml_documents(path)
    for generator in spec.get("configMapGenerator", []):
        data = {}
        for entry in generator["files"]:
            key, _, file = entry.rpartition("=")
            data[key or Path(file).name] = (directory / file).read_text(encoding="utf-8")
        documents.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data}
        )
    for patch in spec.get("patches", []):
        if "path" in patch:
            (merge,) = load_yaml_documents(directory / patch["path"])
            targets = [
                d
                for d in documents
                if (d["kind"], d["metadata"]["name"]) == (merge["kind"], merge["metadata"]["name"])
            ]
            assert targets, f"{patch['path']} patches nothing"
            for target in targets:
                _merge(
                    target, {k: v for k, v in merge.items() if k not in ("apiVersion", "kind", "metadata")}
                )
            continue
        selector = patch["target"]
        targets = [
            d for d in documents
            if d["kind"] == selector["kind"]
            and re.fullmatch(selector.get("name", ".*"), d["metadata"]["name"])
        ]  # fmt: skip
        assert targets, f"{directory.relative_to(ROOT)}: a patch for {selector} matches nothing"
        for target in targets:
            for operation in yaml.safe_load(patch["patch"]):
                assert operation["op"] == "replace", operation
                _json_pointer_replace(target, operation["path"], operation["value"])
    for image in spec.get("images", []):
        for document in documents:
            for container in all_containers(pod_spec(document) or {"containers": []}):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return documents


def all_containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def pod_spec(document: dict[str, Any]) -> dict[str, Any] | None:
    if document["kind"] in ("Deployment", "Job", "StatefulSet"):
        spec: dict[str, Any] = document["spec"]["template"]["spec"]
        return spec
    return None


RENDERED = {name: render(directory) for name, directory in KUSTOMIZATIONS.items()}


def of_kind(kind: str, build: str = "development") -> list[dict[str, Any]]:
    return [d for d in RENDERED[build] if d["kind"] == kind]


def manifests(kind: str) -> list[dict[str, Any]]:
    return of_kind(kind)


def test_every_kubernetes_file_parses() -> None:
    documents = list(kubernetes_documents())
    assert len(documents) > 10
    for path, document in documents:
        if path.name == "kustomization.yaml":
            continue
        assert {"apiVersion", "kind", "metadata"} <= set(document), path
        assert document["metadata"].get("name"), path


def test_every_manifest_is_used_by_a_kustomization() -> None:
    used = used_files(KUBERNETES) | used_files(PRODUCTION)
    assert used_files(BASE) <= used_files(KUBERNETES) & used_files(PRODUCTION), "both build on the base"
    # Examples (Secrets with placeholders, the PostgreSQL operator) are applied by hand.
    on_disk = {p.resolve() for p in KUBERNETES.rglob("*.yaml") if ".example." not in p.name}
    assert on_disk - used == set(), "files no kustomization reads"


def test_the_base_runs_no_simulator_and_development_adds_all_three() -> None:
    base = {d["metadata"]["name"] for d in render(BASE) if d["kind"] == "Deployment"}
    development = {d["metadata"]["name"] for d in of_kind("Deployment")}
    simulators = {"carrier-simulator", "sms-simulator", "identity-simulator"}
    assert base == {"portal-api", "order-worker", "sms-worker", "payroll-worker"}
    assert development == base | simulators
    (config,) = [c for c in of_kind("ConfigMap") if c["metadata"]["name"] == "mport-config"]
    services = {d["metadata"]["name"]: d for d in of_kind("Service")}
    for key in ("CARRIER_BASE_URL", "SMS_GATEWAY_URL", "OIDC_ISSUER"):
        host, port = re.match(r"https?://([^:/]+):(\d+)", config["data"][key]).groups()  # type: ignore[union-attr]
        assert host in simulators, f"development's {key} is not a simulator: {config['data'][key]}"
        assert [p["port"] for p in services[host]["spec"]["ports"]] == [int(port)], key


@pytest.mark.parametrize("build", list(KUSTOMIZATIONS))
def test_deployments_have_probes_limits_and_drain_time(build: str) -> None:
    for deployment in of_kind("Deployment", build):
        pod = deployment["spec"]["template"]["spec"]
        name = deployment["metadata"]["name"]
        assert pod["terminationGracePeriodSeconds"] >= 30, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            module = python_module(container["command"])
            assert_runnable_module(module)
            # The portal's traffic probe leaves out the broker: it takes orders into its outbox
            # while the broker is away.
            ready = (
                "/healthz"
                if module in SIMULATOR_MODULES
                else "/readyz?only=database"
                if name == "portal-api"
                else "/readyz"
            )
            assert container["readinessProbe"]["httpGet"]["path"] == ready
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["resources"]["requests"]["memory"]
            assert container["resources"]["limits"]["memory"]
            port = container["ports"][0]["containerPort"]
            assert port == SERVICES[name][2]
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


def _secrets() -> dict[str, set[str]]:
    """The Secrets of secrets.example.yaml and the keys each holds."""
    return {
        d["metadata"]["name"]: set(d.get("stringData", {})) | set(d.get("data", {}))
        for d in load_yaml_documents(BASE / "secrets.example.yaml")
    }


@pytest.mark.parametrize("build", list(KUSTOMIZATIONS))
def test_every_setting_a_container_needs_is_set_and_every_variable_is_read(build: str) -> None:
    config_maps = {c["metadata"]["name"]: c.get("data", {}) for c in of_kind("ConfigMap", build)}
    every_known = set().union(*(env_names(s) for s in SETTINGS_BY_MODULE.values()))
    assert not set(config_maps["mport-config"]) - every_known, "mport-config has keys no service reads"
    secrets = _secrets()
    for document in RENDERED[build]:
        if (pod := pod_spec(document)) is None:
            continue
        for container in all_containers(pod):
            where = f"{build} {document['metadata']['name']}/{container['name']}"
            settings = SETTINGS_BY_MODULE[python_module(container["command"])]
            given = {e["name"] for e in container.get("env", [])}
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_maps, where
                given |= set(config_maps[source["configMapRef"]["name"]])
            unknown = {e["name"] for e in container.get("env", [])} - env_names(settings) - NON_SETTINGS_ENV
            assert not unknown, f"{where} sets variables its settings do not read: {sorted(unknown)}"
            prefix = str(settings.model_config.get("env_prefix") or "")
            required = {
                (f.alias or prefix + n).upper() for n, f in settings.model_fields.items() if f.is_required()
            }
            assert required <= given, f"{where} lacks {sorted(required - given)}, which have no default"
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if reference and not reference.get("optional"):
                    assert reference["key"] in secrets.get(reference["name"], set()), (
                        f"{where}: {variable['name']} reads {reference['name']}/{reference['key']}, "
                        "which secrets.example.yaml does not have"
                    )
            # And the service starts with what the pod gets: its settings validate.
            with mock.patch.dict(os.environ, container_environment(container, config_maps), clear=True):
                try:
                    settings()
                except ValueError as exc:
                    raise AssertionError(
                        f"{where}: its settings refuse the manifest's environment: {exc}"
                    ) from None


def container_environment(
    container: dict[str, Any], config_maps: dict[str, dict[str, str]]
) -> dict[str, str]:
    """The environment Kubernetes gives a container: its ConfigMaps, then its own variables, with
    secrets as in secrets.example.yaml and $(NAME) expanded."""
    values = {
        d["metadata"]["name"]: d.get("stringData", {})
        for d in load_yaml_documents(BASE / "secrets.example.yaml")
    }
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = re.sub(
                r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), str(variable["value"])
            )
        elif reference := variable["valueFrom"].get("secretKeyRef"):
            if reference["key"] in values.get(reference["name"], {}):
                env[variable["name"]] = values[reference["name"]][reference["key"]]
        elif "fieldRef" in variable["valueFrom"]:
            env[variable["name"]] = "10.0.0.10"  # status.podIP
    return env


def _pods_of(document: dict[str, Any]) -> dict[str, str] | None:
    """The labels of the pods a Deployment or RabbitmqCluster makes."""
    if document["kind"] == "Deployment":
        labels: dict[str, str] = document["spec"]["template"]["metadata"]["labels"]
        return labels
    if document["kind"] == "RabbitmqCluster":  # the operator labels its pods with the cluster's name
        return {"app.kubernetes.io/name": document["metadata"]["name"]}
    return None


@pytest.mark.parametrize("build", list(KUSTOMIZATIONS))
def test_every_budget_selects_pods_and_everything_with_several_replicas_has_one(build: str) -> None:
    budgets = of_kind("PodDisruptionBudget", build)
    scaled = {
        s["spec"]["scaleTargetRef"]["name"]: s["spec"]["maxReplicaCount"]
        for s in of_kind("ScaledObject", build)
    }
    owners = [(d, labels) for d in RENDERED[build] if (labels := _pods_of(d)) is not None]
    covered = set()
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"]
        matched = [d["metadata"]["name"] for d, labels in owners if selector.items() <= labels.items()]
        assert matched, f"PodDisruptionBudget {budget['metadata']['name']} selects no pods"
        covered |= set(matched)
        replicas = next(d for d, _ in owners if d["metadata"]["name"] == matched[0])["spec"].get("replicas")
        if "minAvailable" in budget["spec"] and replicas is not None:
            assert budget["spec"]["minAvailable"] < replicas, (
                f"{budget['metadata']['name']} blocks every drain"
            )
    for document, _ in owners:
        name = document["metadata"]["name"]
        most = max(document["spec"].get("replicas", 1), scaled.get(name, 1))
        if most > 1:
            assert name in covered, f"{name} runs up to {most} replicas without a PodDisruptionBudget"


def test_portal_runs_two_replicas_in_development_and_three_in_production() -> None:
    (portal,) = [d for d in of_kind("Deployment") if d["metadata"]["name"] == "portal-api"]
    (production,) = [d for d in of_kind("Deployment", "production") if d["metadata"]["name"] == "portal-api"]
    assert (portal["spec"]["replicas"], production["spec"]["replicas"]) == (2, 3)


def test_production_has_no_simulator_three_broker_nodes_and_highly_available_postgres() -> None:
    documents = RENDERED["production"]
    assert not [d["metadata"]["name"] for d in documents if "simulator" in d["metadata"]["name"]]
    (config,) = [c for c in of_kind("ConfigMap", "production") if c["metadata"]["name"] == "mport-config"]
    assert config["data"]["PORTAL_MODE"] == "production"
    for key in ("CARRIER_BASE_URL", "SMS_GATEWAY_URL", "OIDC_ISSUER", "OIDC_CLIENT_ID", "PUBLIC_URL"):
        assert config["data"][key], f"production sets no {key}"
        assert "simulator" not in config["data"][key], f"production's {key} is a simulator"
    assert config["data"]["PUBLIC_URL"].startswith("https://")
    (rabbitmq,) = of_kind("RabbitmqCluster", "production")
    assert rabbitmq["spec"]["replicas"] == 3
    (postgres,) = of_kind("Cluster", "production")
    assert postgres["apiVersion"].startswith("postgresql.cnpg.io/")
    assert postgres["spec"]["instances"] >= 3
    assert postgres["spec"]["minSyncReplicas"] >= 1, "a failover would lose acknowledged commits"
    databases = {d["spec"]["name"] for d in of_kind("Database", "production")}
    assert databases == {name.replace("-", "_") for name in DATABASE_SERVICES}
    for scaled_object in of_kind("ScaledObject", "production"):
        assert 2 <= scaled_object["spec"]["minReplicaCount"] < scaled_object["spec"]["maxReplicaCount"]
    for document in documents:
        for container in all_containers(pod_spec(document) or {"containers": []}):
            assert container["image"].startswith("registry.example.com/mport/service:"), container["name"]


def test_the_example_amqp_url_lists_the_three_rabbitmq_nodes() -> None:
    from mport_shared.messaging.connection import broker_addresses

    (secret,) = [
        d
        for d in load_yaml_documents(BASE / "secrets.example.yaml")
        if d["metadata"]["name"] == "mport-secrets"
    ]
    (rabbitmq,) = of_kind("RabbitmqCluster", "production")
    name = rabbitmq["metadata"]["name"]
    hosts = [a.host for a in broker_addresses(secret["stringData"]["AMQP_URL"])]
    assert hosts == [f"{name}-server-{i}.{name}-nodes.mport.svc" for i in range(rabbitmq["spec"]["replicas"])]


def test_rabbitmq_cluster_has_three_nodes_and_imports_the_topology() -> None:
    (cluster,) = manifests("RabbitmqCluster")
    assert cluster["spec"]["replicas"] == 3
    assert "load_definitions = /etc/rabbitmq/definitions.d" in cluster["spec"]["rabbitmq"]["additionalConfig"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) is not installed")
@pytest.mark.parametrize("build", list(KUSTOMIZATIONS))
def test_kubectl_builds_what_the_python_rendering_says(build: str) -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(KUSTOMIZATIONS[build])],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    built = [d for d in yaml.safe_load_all(result.stdout) if d]

    def key(d: dict[str, Any]) -> tuple[str, str]:
        return d["kind"], d["metadata"]["name"]

    assert sorted(map(key, built)) == sorted(map(key, RENDERED[build]))
    ours = {key(d): d for d in RENDERED[build]}
    for document in built:
        theirs = ours[key(document)]
        for field in ("spec", "data"):
            if field in document:
                assert _without_labels(document[field]) == _without_labels(theirs[field]), key(document)


def _without_labels(value: Any) -> Any:
    # kustomize adds app.kubernetes.io/part-of to every metadata.labels and the namespace.
    if isinstance(value, dict):
        return {k: _without_labels(v) for k, v in value.items() if k not in ("labels", "namespace")}
    if isinstance(value, list):
        return [_without_labels(v) for v in value]
    return value


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
