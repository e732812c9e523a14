"""`make run` and the end-to-end stack point the portal at the identity simulator, unless the
environment names the company's own provider (OIDC_ISSUER): then no simulator runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mport_shared.devstack import (
    IDENTITY_CLIENT_ID,
    IDENTITY_CLIENT_SECRET,
    StackConfig,
    external_identity_provider,
    free_port,
)

PORTS = {
    "portal-api": 18000,
    "carrier-simulator": 18081,
    "identity-simulator": 18083,
    "order-worker": 18091,
    "sms-worker": 18092,
    "payroll-worker": 18093,
}
OUTGOING_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
SERVICES = ("portal-api", "order-worker", "sms-worker", "payroll-worker")
DATABASES = {n: f"sqlite+aiosqlite:///{n}.db" for n in SERVICES}


def config(**values: object) -> StackConfig:
    return StackConfig(amqp_url="amqp://x/", database_urls=DATABASES, ports=PORTS, **values)  # type: ignore[arg-type]


def test_the_portal_signs_in_with_the_identity_simulator_on_its_port() -> None:
    specs = {s.name: s for s in config().specs()}
    simulator, portal = specs["identity-simulator"], specs["portal-api"]
    assert simulator.module == "identity_simulator"
    assert not simulator.migrate
    assert simulator.env["IDENTITY_SIM_PORT"] == "18083"
    assert simulator.env["IDENTITY_SIM_ISSUER"] == "http://127.0.0.1:18083"
    assert portal.env["OIDC_ISSUER"] == "http://127.0.0.1:18083"
    assert portal.env["OIDC_CLIENT_ID"] == IDENTITY_CLIENT_ID
    assert portal.env["OIDC_CLIENT_SECRET"] == IDENTITY_CLIENT_SECRET
    assert portal.env["PUBLIC_URL"] == "http://127.0.0.1:18000"
    # The portal's redirect URI is registered with the simulator, for its port (moved off 8000).
    [client] = json.loads(simulator.env["IDENTITY_SIM_CLIENTS"])
    assert client["client_id"] == IDENTITY_CLIENT_ID
    assert client["client_secret"] == IDENTITY_CLIENT_SECRET
    assert client["redirect_uris"] == [
        "http://127.0.0.1:18000/auth/oidc/callback",
        "http://localhost:18000/auth/oidc/callback",
    ]
    assert "http://127.0.0.1:18000/logg-inn" in client["post_logout_redirect_uris"]


def test_a_public_url_is_the_redirect_uri_and_extra_env_still_wins() -> None:
    specs = {
        s.name: s
        for s in config(
            portal_public_url="https://mport.example.test/",
            extra_env={"identity-simulator": {"IDENTITY_SIM_EMAIL_IN_ID_TOKEN": "true"}},
        ).specs()
    }
    assert specs["portal-api"].env["PUBLIC_URL"] == "https://mport.example.test"
    [client] = json.loads(specs["identity-simulator"].env["IDENTITY_SIM_CLIENTS"])
    assert client["redirect_uris"][0] == "https://mport.example.test/auth/oidc/callback"
    assert specs["identity-simulator"].env["IDENTITY_SIM_EMAIL_IN_ID_TOKEN"] == "true"


def test_with_another_provider_no_simulator_runs_and_the_portal_keeps_the_environments_oidc() -> None:
    specs = {s.name: s for s in config(identity_simulator=False).specs()}
    assert "identity-simulator" not in specs
    assert not any(k.startswith("OIDC_") for k in specs["portal-api"].env)


def test_make_run_uses_oidc_issuer_from_the_environment_when_it_is_set() -> None:
    assert external_identity_provider({}) is None
    assert external_identity_provider({"OIDC_ISSUER": "  "}) is None
    issuer = "https://login.microsoftonline.com/tenant/v2.0"
    assert external_identity_provider({"OIDC_ISSUER": issuer, "OIDC_CLIENT_ID": "app"}) == issuer
    with pytest.raises(SystemExit, match="set OIDC_CLIENT_ID"):
        external_identity_provider({"OIDC_ISSUER": issuer})


def test_the_sms_worker_sends_through_the_sms_simulator_with_one_report_token_per_run() -> None:
    first, second = config(), config()
    specs = {s.name: s for s in first.specs()}
    simulator, worker = specs["sms-simulator"], specs["sms-worker"]
    assert simulator.module == "sms_simulator"
    assert not simulator.migrate
    # Left out of the ports given: a free one, not the default another run may hold.
    port = first.ports["sms-simulator"]
    assert port != 8082
    assert simulator.env["SMS_SIM_PORT"] == str(port)
    assert worker.env["SMS_GATEWAY_URL"] == f"http://127.0.0.1:{port}/cgi-bin/sendsms"
    assert worker.env["SMS_GATEWAY_USERNAME"] == simulator.env["SMS_SIM_USERNAME"]
    assert worker.env["SMS_GATEWAY_PASSWORD"] == simulator.env["SMS_SIM_PASSWORD"]
    assert worker.env["SMS_DLR_BASE_URL"] == "http://127.0.0.1:18092"
    assert len(worker.env["SMS_DLR_SECRET"]) >= 32
    [other] = [s for s in second.specs() if s.name == "sms-worker"]
    assert worker.env["SMS_DLR_SECRET"] != other.env["SMS_DLR_SECRET"]


def test_the_portal_reaches_the_payroll_worker_with_the_runs_one_token() -> None:
    specs = {s.name: s for s in config().specs()}
    worker, portal = specs["payroll-worker"], specs["portal-api"]
    assert portal.env["PAYROLL_WORKER_URL"] == "http://127.0.0.1:18093"
    assert len(worker.env["PAYROLL_API_TOKEN"]) >= 32
    assert portal.env["PAYROLL_API_TOKEN"] == worker.env["PAYROLL_API_TOKEN"]
    another_run = {s.name: s for s in config().specs()}["payroll-worker"]
    assert another_run.env["PAYROLL_API_TOKEN"] != worker.env["PAYROLL_API_TOKEN"]


def test_every_service_gets_the_runs_one_ops_token_and_mport_ops_finds_it_in_the_var_dir(
    tmp_path: Path,
) -> None:
    from mport_shared.devstack import Stack
    from mport_shared.ops.services import endpoints

    run = config()
    specs = {s.name: s for s in run.specs()}
    tokens = {specs[n].env["OPS_API_TOKEN"] for n in SERVICES}
    assert tokens == {run.ops_api_token}
    assert len(run.ops_api_token) >= 32
    assert "OPS_API_TOKEN" not in specs["carrier-simulator"].env
    Stack(run).write_ops_file(tmp_path / "ops.json")
    assert (tmp_path / "ops.json").stat().st_mode & 0o777 == 0o600
    found = endpoints({"MPORT_VAR_DIR": str(tmp_path)})
    assert found.token == run.ops_api_token
    assert found.urls == {n: f"http://127.0.0.1:{PORTS[n]}" for n in SERVICES}


def test_make_run_finds_the_broker_at_any_node_amqp_url_lists() -> None:
    import socket

    from mport_shared.devstack import _broker_answers, free_port

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        up = listening.getsockname()[1]
        assert _broker_answers(f"amqp://g:g@127.0.0.1:{free_port()},127.0.0.1:{up}/")
        assert not _broker_answers(f"amqp://g:g@127.0.0.1:{free_port()}/")
    with pytest.raises(SystemExit, match="AMQP_URL: an empty host"):
        _broker_answers("amqp://g:hunter2@h1,,h2/")


@pytest.mark.skipif(not OUTGOING_RANGE.exists(), reason="Linux's range for outgoing connections' ports")
def test_free_ports_are_below_the_outgoing_connections_range_and_each_is_handed_out_once() -> None:
    # A port from that range can be taken by any outgoing connection before the service binds it
    # (a CI run failed so: "address already in use").
    first_outgoing = int(OUTGOING_RANGE.read_text().split()[0])
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert all(10_000 <= port < first_outgoing for port in ports)


def test_free_port_never_hands_out_a_port_browsers_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    # A CI run got 10080, which Chromium refuses (ERR_UNSAFE_PORT): its browser tests failed.
    import mport_shared.devstack as devstack

    picks = iter([10_080, 10_079])
    monkeypatch.setattr(devstack.secrets, "choice", lambda _: next(picks))
    monkeypatch.setattr(devstack, "_outgoing_ports_start", lambda: 32_768)
    monkeypatch.setattr(devstack, "_HANDED_OUT", set())
    assert devstack.free_port() == 10_079
    assert 10_080 in devstack.BROWSER_BAD_PORTS
