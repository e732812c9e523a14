"""The catalog from the seed guide: add-ons, plans and SIM services, with the carrier's codes."""

from __future__ import annotations

from dataclasses import dataclass

from mport_shared.events import Billing, OrderKind


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductSpec:
    code: str
    name: str  # the seed's display name
    kind: OrderKind
    category: str
    carrier_code: str  # what the carrier calls it; the confirm dialog shows it as "Produkt"
    price_ore: int
    billing: Billing
    data_gb: int | None = None


_ADDON, _PLAN = OrderKind.ADDON, OrderKind.PLAN
_ONCE, _MONTHLY = Billing.ONE_OFF, Billing.MONTHLY

CATALOG: tuple[ProductSpec, ...] = (
    ProductSpec(code="hoved-sim", name="Hoved-SIM", kind=_ADDON, category="sim",
                carrier_code="SIM-Hoved", price_ore=0, billing=_MONTHLY),
    ProductSpec(code="ekstra-data-50gb", name="Ekstra Data 50GB", kind=_ADDON, category="ekstra_data",
                carrier_code="Surf-50GB", price_ore=24_900, billing=_ONCE, data_gb=50),
    ProductSpec(code="ekstra-data-15gb", name="Ekstra Data 15GB", kind=_ADDON, category="ekstra_data",
                carrier_code="Surf-15GB", price_ore=14_900, billing=_ONCE, data_gb=15),
    ProductSpec(code="ekstra-data-5gb", name="Ekstra Data 5GB", kind=_ADDON, category="ekstra_data",
                carrier_code="Surf-5GB", price_ore=7_900, billing=_ONCE, data_gb=5),
    ProductSpec(code="ekstra-data-1gb", name="Ekstra Data 1GB", kind=_ADDON, category="ekstra_data",
                carrier_code="Surf-1GB", price_ore=2_900, billing=_ONCE, data_gb=1),
    ProductSpec(code="min-sky-50gb", name="Min Sky 50GB ekstra", kind=_ADDON, category="min_sky",
                carrier_code="Sky-50GB", price_ore=7_900, billing=_MONTHLY),
    ProductSpec(code="min-sky-25gb", name="Min Sky 25GB", kind=_ADDON, category="min_sky",
                carrier_code="Sky-25GB", price_ore=4_900, billing=_MONTHLY),
    ProductSpec(code="min-sky-10gb", name="Min Sky 10GB ekstra", kind=_ADDON, category="min_sky",
                carrier_code="Sky-10GB", price_ore=2_900, billing=_MONTHLY),
    ProductSpec(code="nettvern", name="Nettvern", kind=_ADDON, category="nettvern",
                carrier_code="Nettvern", price_ore=4_900, billing=_MONTHLY),
    ProductSpec(code="tvilling", name="Tvilling", kind=_ADDON, category="tvilling",
                carrier_code="Tvilling", price_ore=6_900, billing=_MONTHLY),
    ProductSpec(code="datakort", name="Datakort", kind=_ADDON, category="datakort",
                carrier_code="Datakort", price_ore=6_900, billing=_MONTHLY),
    ProductSpec(code="bedrift-total-a", name="Bedrift Total A (3 GB)", kind=_PLAN, category="plan",
                carrier_code="BT-A-3GB", price_ore=29_900, billing=_MONTHLY, data_gb=3),
    ProductSpec(code="bedrift-total-b", name="Bedrift Total B (5 GB)", kind=_PLAN, category="plan",
                carrier_code="BT-B-5GB", price_ore=34_900, billing=_MONTHLY, data_gb=5),
    ProductSpec(code="bedrift-total-c", name="Bedrift Total C (10 GB)", kind=_PLAN, category="plan",
                carrier_code="BT-C-10GB", price_ore=39_900, billing=_MONTHLY, data_gb=10),
    ProductSpec(code="bedrift-total-d", name="Bedrift Total D (25 GB)", kind=_PLAN, category="plan",
                carrier_code="BT-D-25GB", price_ore=44_900, billing=_MONTHLY, data_gb=25),
    ProductSpec(code="bedrift-total-e", name="Bedrift Total E (50GB)", kind=_PLAN, category="plan",
                carrier_code="BT-E-50GB", price_ore=49_900, billing=_MONTHLY, data_gb=50),
    ProductSpec(code="bestill-sim", name="Bestill SIM", kind=OrderKind.SIM_ORDER, category="sim",
                carrier_code="SIM-Bestill", price_ore=0, billing=_ONCE),
    ProductSpec(code="aktiver-nytt-sim", name="Aktiver nytt SIM", kind=OrderKind.SIM_ACTIVATION,
                category="sim", carrier_code="SIM-Aktiver", price_ore=0, billing=_ONCE),
)  # fmt: skip
