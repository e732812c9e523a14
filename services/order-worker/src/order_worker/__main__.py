"""`python -m order_worker` runs the worker; `python -m order_worker migrate` upgrades its database."""

import sys

from mport_shared.db import migrate_sync
from mport_shared.settings import load_settings

from order_worker.main import main
from order_worker.settings import OrderWorkerSettings

if sys.argv[1:] == ["migrate"]:
    migrate_sync("order_worker:migrations", load_settings(OrderWorkerSettings).database_url)
else:
    main()
