"""The provider's RSA signing key: made at start, or kept in a file so that restarts keep it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

ALGORITHM = "RS256"
KEY_SIZE = 2048


class UnusableKeyFile(Exception):
    """The key file holds no RSA private key of at least 2048 bits."""


def new_signing_key() -> RSAKey:
    # The kid is the key's RFC 7638 thumbprint, so the same key always has the same kid.
    return RSAKey.generate_key(KEY_SIZE, parameters={"use": "sig", "alg": ALGORITHM}, auto_kid=True)


def load_signing_key(path: Path | None) -> RSAKey:
    """The key in `path` (PEM or JWK); a new one when `path` is None, also written there when it is
    a path where nothing is yet."""
    if path is None:
        return new_signing_key()
    if not path.exists():
        key = new_signing_key()
        _write_private(path, key.as_pem(private=True))
        return key
    raw = path.read_bytes()
    try:
        source: bytes | dict[str, str | list[str]] = json.loads(raw) if raw.lstrip().startswith(b"{") else raw
        key = RSAKey.import_key(source, parameters={"use": "sig", "alg": ALGORITHM})
    except (JoseError, ValueError, TypeError) as exc:
        raise UnusableKeyFile(f"{path}: not an RSA key ({exc})") from exc
    if not key.is_private:
        raise UnusableKeyFile(f"{path}: a public key; the provider needs the private key to sign")
    if key.raw_value.key_size < KEY_SIZE:
        raise UnusableKeyFile(f"{path}: {key.raw_value.key_size}-bit key, at least {KEY_SIZE} needed")
    if key.kid is None:
        key.ensure_kid()
    return key


def public_key_set(key: RSAKey) -> dict[str, object]:
    """The JWKS document: the public half only."""
    return dict(KeySet([key]).as_dict(private=False))


def _write_private(path: Path, content: bytes) -> None:
    # Readable by the owner only, and never half-written.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
