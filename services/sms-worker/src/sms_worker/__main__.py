"""`python -m sms_worker` runs the worker; `python -m sms_worker migrate` upgrades its database."""

import sys

from mport_shared.db import migrate_sync
from mport_shared.settings import load_settings

from sms_worker.main import main
from sms_worker.settings import SmsWorkerSettings

if sys.argv[1:] == ["migrate"]:
    migrate_sync("sms_worker:migrations", load_settings(SmsWorkerSettings).database_url)
else:
    main()
