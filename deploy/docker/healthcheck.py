"""Container health probe: exit 0 when the URL answers 2xx, else 1 (the image has no curl)."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else "http://127.0.0.1:8000/readyz"
    if not url.startswith("http://"):
        print(f"healthcheck: only http:// URLs are probed, not {url!r}", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (scheme checked above)
            return 0 if 200 <= response.status < 300 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
