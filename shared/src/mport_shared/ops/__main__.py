"""`python -m mport_shared.ops …` is `mport-ops …`."""

from mport_shared.ops.cli import console

console()
