"""The product: one model from the database (repositories.SqlProducts) to the API
(catalog.views.CatalogItem extends it); and the catalog from the seed guide, with the carrier's codes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mport_shared.events import Billing, OrderKind
from pydantic import BaseModel, ConfigDict, Field, computed_field


class Product(BaseModel):
    """An add-on, a plan or a SIM service. Immutable, so one copy serves every request."""

    model_config = ConfigDict(frozen=True)
    code: str
    name: str = Field(description="The seed's display name")
    kind: OrderKind
    category: str = Field(description="What the company's mobile policy may have one rule for")
    carrier_product_code: str = Field(
        description="What the carrier calls it; the confirm dialog shows it as Produkt"
    )
    price_ore: int
    billing: Billing
    data_gb: int | None = None

    @computed_field(description="Works in Norway only (Ekstra Data): the page and the dialog say so")  # type: ignore[prop-decorator]
    @property
    def norway_only(self) -> bool:
        return self.category == "ekstra_data"

    @property
    def is_monthly_addon(self) -> bool:
        """A monthly add-on is active until ended: it may be ordered once at a time."""
        return self.kind is OrderKind.ADDON and self.billing is Billing.MONTHLY


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every product, in the order the pages show them."""

    products: tuple[Product, ...]
    by_code: Mapping[str, Product] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_code", {p.code: p for p in self.products})

    def get(self, code: str | None) -> Product | None:
        return self.by_code.get(code) if code is not None else None


_ADDON, _PLAN = OrderKind.ADDON, OrderKind.PLAN
_ONCE, _MONTHLY = Billing.ONE_OFF, Billing.MONTHLY

CATALOG: tuple[Product, ...] = (
    Product(code="hoved-sim", name="Hoved-SIM", kind=_ADDON, category="sim",
            carrier_product_code="SIM-Hoved", price_ore=0, billing=_MONTHLY),
    Product(code="ekstra-data-50gb", name="Ekstra Data 50GB", kind=_ADDON, category="ekstra_data",
            carrier_product_code="Surf-50GB", price_ore=24_900, billing=_ONCE, data_gb=50),
    Product(code="ekstra-data-15gb", name="Ekstra Data 15GB", kind=_ADDON, category="ekstra_data",
            carrier_product_code="Surf-15GB", price_ore=14_900, billing=_ONCE, data_gb=15),
    Product(code="ekstra-data-5gb", name="Ekstra Data 5GB", kind=_ADDON, category="ekstra_data",
            carrier_product_code="Surf-5GB", price_ore=7_900, billing=_ONCE, data_gb=5),
    Product(code="ekstra-data-1gb", name="Ekstra Data 1GB", kind=_ADDON, category="ekstra_data",
            carrier_product_code="Surf-1GB", price_ore=2_900, billing=_ONCE, data_gb=1),
    Product(code="min-sky-50gb", name="Min Sky 50GB ekstra", kind=_ADDON, category="min_sky",
            carrier_product_code="Sky-50GB", price_ore=7_900, billing=_MONTHLY),
    Product(code="min-sky-25gb", name="Min Sky 25GB", kind=_ADDON, category="min_sky",
            carrier_product_code="Sky-25GB", price_ore=4_900, billing=_MONTHLY),
    Product(code="min-sky-10gb", name="Min Sky 10GB ekstra", kind=_ADDON, category="min_sky",
            carrier_product_code="Sky-10GB", price_ore=2_900, billing=_MONTHLY),
    Product(code="nettvern", name="Nettvern", kind=_ADDON, category="nettvern",
            carrier_product_code="Nettvern", price_ore=4_900, billing=_MONTHLY),
    Product(code="tvilling", name="Tvilling", kind=_ADDON, category="tvilling",
            carrier_product_code="Tvilling", price_ore=6_900, billing=_MONTHLY),
    Product(code="datakort", name="Datakort", kind=_ADDON, category="datakort",
            carrier_product_code="Datakort", price_ore=6_900, billing=_MONTHLY),
    Product(code="bedrift-total-a", name="Bedrift Total A (3 GB)", kind=_PLAN, category="plan",
            carrier_product_code="BT-A-3GB", price_ore=29_900, billing=_MONTHLY, data_gb=3),
    Product(code="bedrift-total-b", name="Bedrift Total B (5 GB)", kind=_PLAN, category="plan",
            carrier_product_code="BT-B-5GB", price_ore=34_900, billing=_MONTHLY, data_gb=5),
    Product(code="bedrift-total-c", name="Bedrift Total C (10 GB)", kind=_PLAN, category="plan",
            carrier_product_code="BT-C-10GB", price_ore=39_900, billing=_MONTHLY, data_gb=10),
    Product(code="bedrift-total-d", name="Bedrift Total D (25 GB)", kind=_PLAN, category="plan",
            carrier_product_code="BT-D-25GB", price_ore=44_900, billing=_MONTHLY, data_gb=25),
    Product(code="bedrift-total-e", name="Bedrift Total E (50GB)", kind=_PLAN, category="plan",
            carrier_product_code="BT-E-50GB", price_ore=49_900, billing=_MONTHLY, data_gb=50),
    Product(code="bestill-sim", name="Bestill SIM", kind=OrderKind.SIM_ORDER, category="sim",
            carrier_product_code="SIM-Bestill", price_ore=0, billing=_ONCE),
    Product(code="aktiver-nytt-sim", name="Aktiver nytt SIM", kind=OrderKind.SIM_ACTIVATION,
            category="sim", carrier_product_code="SIM-Aktiver", price_ore=0, billing=_ONCE),
)  # fmt: skip
