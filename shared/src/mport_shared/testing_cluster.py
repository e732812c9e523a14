"""A throw-away RabbitMQ cluster for tests: extra `rabbitmq-server` nodes of this machine's
installation, on loopback ports and in data directories of their own, joined with
`rabbitmqctl join_cluster`, and removed afterwards. The machine's own node (5672) is never touched.

Each node is started as the `rabbitmq` user, so it shares that user's Erlang cookie with the
others and with `rabbitmqctl`; it reads a config file of its own (the system's pins port 5672) and
no plugins (management and prometheus would want the system node's ports)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mport_shared.devstack import free_port

USER = "rabbitmq"
_SERVER = ("/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server")
_CTL = ("/usr/sbin/rabbitmqctl", "rabbitmqctl")


def _program(candidates: Sequence[str]) -> str | None:
    for candidate in candidates:
        path = candidate if os.path.isabs(candidate) else shutil.which(candidate)
        if path and os.access(path, os.X_OK):
            return path
    return None


def unavailable_reason() -> str | None:
    """Why this machine cannot run such a cluster (for a skip), or None when it can."""
    if _program(_SERVER) is None or _program(_CTL) is None:
        return "no local RabbitMQ installation (rabbitmq-server, rabbitmqctl)"
    try:
        account = pwd.getpwnam(USER)
    except KeyError:
        return f"no {USER!r} user, whose Erlang cookie the nodes would share"
    if os.geteuid() not in (0, account.pw_uid):
        return f"starting RabbitMQ nodes needs root or the {USER!r} user"
    return None


class ClusterError(RuntimeError):
    """A node did not start, join or answer; the message carries the end of its log."""


@dataclass
class RabbitNode:
    """One node: its Erlang node name, its AMQP and distribution ports and its directory."""

    name: str
    amqp_port: int
    dist_port: int
    home: Path
    process: asyncio.subprocess.Process | None = None
    stopped: bool = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.amqp_port}"

    @property
    def output(self) -> Path:
        return self.home / "server.out"

    def tail(self, lines: int = 40) -> str:
        """The end of what the node printed and logged, for an error message."""
        texts = []
        for path in (self.output, *sorted((self.home / "log").glob("*.log"))):
            with contextlib.suppress(OSError):
                texts.append(
                    f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(texts)


@dataclass
class RabbitCluster:
    """`size` nodes on free loopback ports; `await start()`, then `amqp_url()` lists them all.

    Always `await close()` (the fixture does): it stops every node still up, kills what does not
    stop, and removes the data directories, also after a failed start."""

    size: int = 3
    user: str = "guest"
    password: str = "guest"  # noqa: S105 - the default user a fresh node makes; guest may connect from loopback only
    start_timeout_s: float = 180.0
    nodes: list[RabbitNode] = field(default_factory=list)
    root: Path | None = None

    async def start(self) -> None:
        run = uuid.uuid4().hex[:6]
        account = pwd.getpwnam(USER)
        self.root = Path(tempfile.mkdtemp(prefix=f"mport-rabbit-cluster-{run}-"))
        for index in range(1, self.size + 1):
            home = self.root / f"node{index}"
            self.nodes.append(RabbitNode(f"mport-{run}-{index}@localhost", free_port(), free_port(), home))
        for node in self.nodes:
            _write_node_files(node)
        _chown_tree(self.root, account.pw_uid, account.pw_gid)
        # The nodes boot side by side (each takes a few seconds of CPU), then join the first.
        for node in self.nodes:
            await self._launch(node, home_of_user=account.pw_dir)
        await asyncio.gather(*(self._wait_listening(node) for node in self.nodes))
        first, *others = self.nodes
        await asyncio.gather(*(self.ctl(node, "stop_app") for node in others))
        for node in others:  # one at a time: each join changes the cluster's membership
            await self.ctl(node, "join_cluster", first.name)
        # Each returns once its node runs again, as a member of the first's cluster.
        await asyncio.gather(*(self.ctl(node, "start_app") for node in others))

    @property
    def node_names(self) -> list[str]:
        return [node.name for node in self.nodes]

    def node(self, name: str) -> RabbitNode:
        return next(node for node in self.nodes if node.name == name)

    def amqp_url(self, *, vhost: str = "/", first: RabbitNode | None = None) -> str:
        """An AMQP_URL listing every node (`first` at the head, if given), as the services take it."""
        ordered = ([first] if first else []) + [node for node in self.nodes if node is not first]
        hosts = ",".join(node.address for node in ordered)
        return f"amqp://{self.user}:{self.password}@{hosts}/{quote(vhost, safe='')}"

    def node_url(self, node: RabbitNode, *, vhost: str = "/") -> str:
        return f"amqp://{self.user}:{self.password}@{node.address}/{quote(vhost, safe='')}"

    async def queue(self, name: str, *, vhost: str = "/") -> dict[str, Any]:
        """What the cluster says of a queue: `leader` (a node name), `members` and `online` (node
        names), `type`, `consumers` and `messages` (ready and unacknowledged)."""
        node = next(node for node in self.nodes if not node.stopped)
        listing = json.loads(
            await self.ctl(node, "list_queues", "-p", vhost, "name", "type", "leader", "members", "online",
                           "consumers", "messages", "--formatter", "json")
        )  # fmt: skip
        for queue in listing:
            if queue.get("name") == name:
                found: dict[str, Any] = queue
                return found
        raise ClusterError(f"no queue {name!r} in vhost {vhost!r}")

    async def stop_node(self, node: RabbitNode) -> None:
        """Stop one node as an operator would (`rabbitmqctl stop`): its clients are disconnected."""
        await self.ctl(node, "stop")
        node.stopped = True
        if node.process is not None:
            try:
                await asyncio.wait_for(node.process.wait(), 60)
            except TimeoutError:
                _kill(node)
                await node.process.wait()

    async def close(self) -> None:
        """Stop every node, kill what does not stop in time, remove the data directories."""

        async def stop(node: RabbitNode) -> None:
            if node.process is None or node.process.returncode is not None:
                return
            with contextlib.suppress(ClusterError, TimeoutError):
                await asyncio.wait_for(self.ctl(node, "stop", timeout_s=30), 40)
            try:
                await asyncio.wait_for(node.process.wait(), 10)
            except TimeoutError:
                _kill(node)
                await node.process.wait()

        try:
            await asyncio.gather(*(stop(node) for node in self.nodes), return_exceptions=True)
        finally:
            for node in self.nodes:
                _kill(node)
                node.stopped = True
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)

    async def ctl(self, node: RabbitNode, *args: str, timeout_s: float = 120.0) -> str:
        """`rabbitmqctl -n <node> …`; its output, or ClusterError with the node's log."""
        ctl = _program(_CTL)
        assert ctl is not None
        process = await asyncio.create_subprocess_exec(
            ctl, "-q", "-n", node.name, *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(process.communicate(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise ClusterError(
                f"rabbitmqctl {' '.join(args)} on {node.name} took over {timeout_s:.0f}s"
            ) from None
        text = out.decode(errors="replace")
        if process.returncode != 0:
            raise ClusterError(f"rabbitmqctl {' '.join(args)} on {node.name} failed:\n{text}\n{node.tail()}")
        return text

    async def _launch(self, node: RabbitNode, *, home_of_user: str) -> None:
        server = _program(_SERVER)
        assert server is not None
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": home_of_user,  # the rabbitmq user's Erlang cookie, shared with every node and the CLI
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_CONFIG_FILE": str(node.home / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.home / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(node.home / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.home / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(node.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.home / "log"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        command = [server] if os.geteuid() != 0 else ["runuser", "-u", USER, "--", server]
        with node.output.open("wb") as output:
            # A session of its own: close() can kill the node and every process it started at once.
            node.process = await asyncio.create_subprocess_exec(
                *command, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=output,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    async def _wait_listening(self, node: RabbitNode) -> None:
        """Until the node accepts AMQP connections (its listener opens last when it boots)."""
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if node.process is not None and node.process.returncode is not None:
                raise ClusterError(
                    f"{node.name} exited with {node.process.returncode} while starting:\n{node.tail()}"
                )
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", node.amqp_port), 2)
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"{node.name} did not listen within {self.start_timeout_s:.0f}s:\n{node.tail()}"
                    ) from None
                await asyncio.sleep(0.2)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return


def _write_node_files(node: RabbitNode) -> None:
    (node.home / "mnesia").mkdir(parents=True)
    (node.home / "log").mkdir()
    (node.home / "rabbitmq.conf").write_text(
        f"listeners.tcp.1 = 127.0.0.1:{node.amqp_port}\n"
        "# A test machine's disk may be nearly full of other things; the default (50 MB) is kept.\n"
    )
    (node.home / "enabled_plugins").write_text("[].\n")
    (node.home / "rabbitmq-env.conf").write_text("# this node's own: nothing from /etc/rabbitmq\n")


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    if os.geteuid() != 0:
        return
    os.chown(root, uid, gid)
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(os.path.join(directory, name), uid, gid)


def _kill(node: RabbitNode) -> None:
    if node.process is not None and node.process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(node.process.pid, signal.SIGKILL)
