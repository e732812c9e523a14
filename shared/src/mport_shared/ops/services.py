"""Where `mport-ops` finds the services' /ops endpoints and their token.

In order, later ones winning: the defaults of `make run` (127.0.0.1 and its ports), the file
`make run` writes (MPORT_OPS_FILE, else MPORT_VAR_DIR/ops.json, else var/ops.json), the
environment (MPORT_OPS_URLS="portal-api=http://…,order-worker=http://…"; OPS_API_TOKEN), and
`--url NAME=URL` on the command line. The token is never taken from the command line (it would
show in `ps`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

SERVICES = ("portal-api", "order-worker", "sms-worker", "payroll-worker")
STUCK_SERVICES = ("portal-api", "order-worker")
_DEFAULT_PORTS = {"portal-api": 8000, "order-worker": 8091, "sms-worker": 8092, "payroll-worker": 8093}


class OpsError(Exception):
    """An expected failure: said in one line, with this exit code."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Endpoints:
    urls: Mapping[str, str]
    token: str | None
    source: str  # where the token came from, for error messages


def ops_file(environ: Mapping[str, str]) -> Path:
    if environ.get("MPORT_OPS_FILE"):
        return Path(environ["MPORT_OPS_FILE"])
    return Path(environ.get("MPORT_VAR_DIR", "var")) / "ops.json"


def read_ops_file(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise OpsError(f"cannot read {path}: {type(exc).__name__}", exit_code=2) from None
    return document if isinstance(document, dict) else {}


def parse_urls(pairs: Sequence[str], *, where: str) -> dict[str, str]:
    urls: dict[str, str] = {}
    for pair in pairs:
        name, sep, url = pair.strip().partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise OpsError(f"{where}: expected NAME=http://host:port, got {pair!r}", exit_code=2)
        if name not in SERVICES:
            raise OpsError(f"{where}: unknown service {name!r}; one of: {', '.join(SERVICES)}", exit_code=2)
        urls[name] = url.rstrip("/")
    return urls


def endpoints(environ: Mapping[str, str], flags: Sequence[str] = ()) -> Endpoints:
    urls = {name: f"http://127.0.0.1:{port}" for name, port in _DEFAULT_PORTS.items()}
    path = ops_file(environ)
    document = read_ops_file(path)
    file_urls = document.get("services")
    if isinstance(file_urls, dict):
        urls.update({k: str(v).rstrip("/") for k, v in file_urls.items() if k in SERVICES})
    token, source = (str(document["token"]), str(path)) if document.get("token") else (None, "")
    if environ.get("MPORT_OPS_URLS"):
        urls.update(parse_urls(environ["MPORT_OPS_URLS"].split(","), where="MPORT_OPS_URLS"))
    if environ.get("OPS_API_TOKEN"):
        token, source = environ["OPS_API_TOKEN"], "OPS_API_TOKEN"
    urls.update(parse_urls(flags, where="--url"))
    return Endpoints(urls=urls, token=token, source=source)


def ask(ends: Endpoints, service: str, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """GET one service's /ops endpoint; an OpsError that says what went wrong in words."""
    if not ends.token:
        raise OpsError(
            "no ops token: set OPS_API_TOKEN (the services' own), or run `make run`, which writes "
            "it to MPORT_VAR_DIR/ops.json",
            exit_code=2,
        )
    url = ends.urls[service]
    try:
        response = httpx.get(
            f"{url}{path}", params=params, headers={"Authorization": f"Bearer {ends.token}"}, timeout=10
        )
    except httpx.HTTPError as exc:
        raise OpsError(f"{service} at {url} does not answer ({type(exc).__name__})", exit_code=3) from None
    if response.status_code == 404:
        raise OpsError(f"{service} at {url} has no {path}: is OPS_API_TOKEN set on it?", exit_code=3)
    if response.status_code in (401, 403):
        raise OpsError(f"{service} at {url} refused the token from {ends.source} ({response.status_code})")
    if response.status_code != 200:
        raise OpsError(f"{service} at {url} answered {response.status_code} to {path}", exit_code=3)
    try:
        answer = response.json()
    except ValueError:
        raise OpsError(f"{service} at {url} answered {path} with something not JSON", exit_code=3) from None
    if not isinstance(answer, dict):
        raise OpsError(f"{service} at {url} answered {path} with an unexpected shape", exit_code=3)
    return answer


def env() -> Mapping[str, str]:
    return os.environ
