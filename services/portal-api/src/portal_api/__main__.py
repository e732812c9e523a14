"""`python -m portal_api [serve|migrate|seed]`: run the portal, upgrade its database, or seed it."""

import asyncio
import sys

from mport_shared.db import create_engine, migrate_sync, session_factory
from mport_shared.settings import load_settings

from portal_api.main import main
from portal_api.seed import seed
from portal_api.settings import PortalSettings


async def _seed(url: str, *, demo: bool) -> None:
    engine = create_engine(url)
    try:
        await seed(session_factory(engine), demo=demo)
    finally:
        await engine.dispose()


command = sys.argv[1] if len(sys.argv) > 1 else "serve"
if command == "migrate":
    migrate_sync("portal_api:migrations", load_settings(PortalSettings).database_url)
elif command == "seed":
    settings = load_settings(PortalSettings)
    asyncio.run(_seed(settings.database_url, demo=settings.is_local or "--demo" in sys.argv))
elif command == "serve":
    main()
else:
    raise SystemExit(f"usage: python -m portal_api [serve|migrate|seed [--demo]]; not {command!r}")
