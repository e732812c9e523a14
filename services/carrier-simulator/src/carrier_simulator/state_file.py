"""Keeps the simulator's orders and hubs in a JSON file, so that they survive a restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mport_shared.logging import get_logger

log = get_logger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class SavedState:
    orders: list[dict[str, Any]] = field(default_factory=list)
    hubs: list[dict[str, Any]] = field(default_factory=list)


def encode_state(*, orders: list[str], hubs: list[dict[str, Any]]) -> str:
    """The file's text; `orders` are already JSON, so an unchanged order costs no encoding."""
    return (
        f'{{"version":{FORMAT_VERSION},"hubs":{json.dumps(hubs, separators=(",", ":"))},'
        f'"orders":[{",".join(orders)}]}}'
    )


class StateFile:
    """Saves at most every `interval_s` after a change, and once more when stopped."""

    def __init__(self, path: Path, *, interval_s: float, snapshot: Callable[[], str]) -> None:
        self.path = path
        self._interval_s = interval_s
        self._snapshot = snapshot
        self._dirty = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def load(self) -> SavedState:
        """What the last run saved; nothing when there is no file yet. A bad file is an error."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return SavedState()
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
            raise ValueError(f"{self.path} is not a carrier simulator state file (version {FORMAT_VERSION})")
        return SavedState(orders=list(document["orders"]), hubs=list(document["hubs"]))

    def mark_dirty(self) -> None:
        self._dirty.set()

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="state-file")

    async def stop(self) -> None:
        """Write what changed since the last save, then stop."""
        self._stopping.set()
        self._dirty.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                # Encoded here, on the loop, while nothing changes; written off it.
                await asyncio.to_thread(self._write, self._snapshot())
            except OSError as exc:
                log.error("carrier_simulator_state_not_saved", path=str(self.path), error=str(exc))
            if self._stopping.is_set():
                if not self._dirty.is_set():
                    return
                continue
            # Debounce: under load the file is rewritten at most this often.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)

    def _write(self, text: str) -> None:
        # A temporary file in the same directory, then a rename: a reader (or a crash) sees
        # the old file or the new one, never half of one.
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
