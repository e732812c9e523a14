"""Run the identity simulator under uvicorn: `python -m identity_simulator`."""

from __future__ import annotations

import sys

import uvicorn
from mport_shared.logging import configure_logging, get_logger
from mport_shared.settings import load_settings
from pydantic_settings import SettingsError

from identity_simulator.app import create_app
from identity_simulator.keys import UnusableKeyFile, load_signing_key
from identity_simulator.settings import IdentitySimSettings


def main() -> None:
    try:
        settings = load_settings(IdentitySimSettings)
    except SettingsError as exc:
        # JSON that does not parse (IDENTITY_SIM_CLIENTS, IDENTITY_SIM_PEOPLE) fails before validation.
        print(f"Invalid configuration for IdentitySimSettings: {exc} (not JSON?)", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(service="identity-simulator", level=settings.log_level, json=settings.log_json)
    try:
        key = load_signing_key(settings.key_file)
    except (UnusableKeyFile, OSError) as exc:
        print(f"IDENTITY_SIM_KEY_FILE: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    get_logger(__name__).info(
        "identity_simulator_starting",
        host=settings.host,
        port=settings.port,
        issuer=settings.issuer,
        clients=[c.client_id for c in settings.clients],
        people=len(settings.people),
        key_id=key.kid,
        key_file=None if settings.key_file is None else str(settings.key_file),
        # Not "..._token": the shared logging redacts any key naming a token.
        id_claims_beyond_sub="email, email_verified, name" if settings.email_in_id_token else "none",
        typed_email_verified=settings.typed_email_verified,
    )
    # log_config=None keeps uvicorn's loggers on the shared JSON set-up; no access log, since the
    # query strings it would print carry the clients' state, nonce and PKCE challenge values.
    app = create_app(settings, signing_key=key)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
