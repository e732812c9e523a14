"""`python -m payroll_worker` runs the worker; `python -m payroll_worker migrate` upgrades its database."""

import sys

from mport_shared.db import migrate_sync
from mport_shared.settings import load_settings

from payroll_worker.main import main
from payroll_worker.settings import PayrollWorkerSettings

if sys.argv[1:] == ["migrate"]:
    migrate_sync("payroll_worker:migrations", load_settings(PayrollWorkerSettings).database_url)
else:
    main()
