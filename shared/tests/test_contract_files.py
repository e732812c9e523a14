"""The published event contract (docs/events) is what the code says."""

from __future__ import annotations

from pathlib import Path

from mport_shared.schemas import documents

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"


def test_published_schemas_match_the_code() -> None:
    expected = documents()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in DOCS.glob("*.json")}
    assert on_disk == expected, "docs/events is stale: run `make schemas`"
