"""`python -m payroll_worker` runs the worker; `migrate` upgrades its database; `close`, `periods`
and `export` are the pay-period commands (see payroll_worker.cli)."""

import sys

from mport_shared.db import migrate_sync
from mport_shared.settings import load_settings

from payroll_worker.main import main
from payroll_worker.settings import PayrollWorkerSettings

if sys.argv[1:] == ["migrate"]:
    migrate_sync("payroll_worker:migrations", load_settings(PayrollWorkerSettings).database_url)
elif sys.argv[1:2] and sys.argv[1] in ("close", "periods", "export"):
    from payroll_worker.cli import main as cli

    sys.exit(cli(sys.argv[1:]))
else:
    main()
