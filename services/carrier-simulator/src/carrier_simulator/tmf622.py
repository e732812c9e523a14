"""The subset of TM Forum's TMF622 v5.0.0 Product Ordering schemas the simulator reads and writes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

BASE_PATH = "/tmf-api/productOrderingManagement/v5"
DOMAIN = "productOrderingManagement"


class TmfModel(BaseModel):
    """Base of every TMF resource: camelCase and `@`-prefixed names on the wire."""

    # Unknown TMF attributes are ignored rather than refused: a real carrier accepts the whole
    # ProductOrder_FVO document, and this subset only acts on the attributes it models.
    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class ProductOrderState(StrEnum):
    """ProductOrderStateType."""

    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    PENDING = "pending"
    HELD = "held"
    IN_PROGRESS = "inProgress"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    PARTIAL = "partial"
    ASSESSING_CANCELLATION = "assessingCancellation"
    PENDING_CANCELLATION = "pendingCancellation"
    DRAFT = "draft"
    IN_PROGRESS_ACCEPTED = "inProgress.accepted"


class ProductOrderItemState(StrEnum):
    """ProductOrderItemStateType."""

    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    PENDING = "pending"
    HELD = "held"
    IN_PROGRESS = "inProgress"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    PARTIAL = "partial"
    ASSESSING_CANCELLATION = "assessingCancellation"
    PENDING_CANCELLATION = "pendingCancellation"


class ItemAction(StrEnum):
    """ItemActionType."""

    ADD = "add"
    MODIFY = "modify"
    DELETE = "delete"
    NO_CHANGE = "noChange"


class ExternalIdentifier(TmfModel):
    """ExternalIdentifier: the id the ordering system (we) gave the order."""

    id: str = Field(min_length=1)
    owner: str | None = None
    external_identifier_type: str | None = Field(default=None, alias="externalIdentifierType")
    type: Literal["ExternalIdentifier"] = Field(alias="@type")


class ProductOfferingRef(TmfModel):
    """ProductOfferingRef: which catalog offering an item orders."""

    id: str = Field(min_length=1)
    href: str | None = None
    name: str | None = None
    version: str | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")
    type: Literal["ProductOfferingRef"] = Field(alias="@type")


class Characteristic(TmfModel):
    """Characteristic and its typed subclasses (StringCharacteristic, NumberCharacteristic, …)."""

    name: str = Field(min_length=1)
    value: JsonValue
    value_type: str | None = Field(default=None, alias="valueType")
    id: str | None = None
    type: str = Field(alias="@type", pattern=r"^[A-Za-z]*Characteristic$")


class Product(TmfModel):
    """Product given by value: the characteristics (msisdn, ICC, …) of what is ordered."""

    id: str | None = None
    name: str | None = None
    product_characteristic: list[Characteristic] = Field(default_factory=list, alias="productCharacteristic")
    type: Literal["Product"] = Field(alias="@type")


class ProductRef(TmfModel):
    """ProductRef: an existing product given by reference."""

    id: str = Field(min_length=1)
    href: str | None = None
    name: str | None = None
    type: Literal["ProductRef"] = Field(alias="@type")


ProductRefOrValue = Annotated[Product | ProductRef, Field(discriminator="type")]


class ProductOrderItemCreate(TmfModel):
    """ProductOrderItem_FVO, with the productOffering this subset needs made mandatory."""

    id: str = Field(min_length=1)
    action: ItemAction
    quantity: int | None = Field(default=None, ge=1)
    product_offering: ProductOfferingRef = Field(alias="productOffering")
    product: ProductRefOrValue | None = None
    type: Literal["ProductOrderItem"] = Field(alias="@type")


class ProductOrderCreate(TmfModel):
    """ProductOrder_FVO: the body of `POST /productOrder`."""

    external_id: list[ExternalIdentifier] = Field(default_factory=list, alias="externalId")
    product_order_item: list[ProductOrderItemCreate] = Field(min_length=1, alias="productOrderItem")
    description: str | None = None
    category: str | None = None
    priority: str | None = None
    # Only submitted orders are simulated; a draft would need the PATCH flow this subset lacks.
    requested_initial_state: Literal["acknowledged"] = Field(
        default="acknowledged", alias="requestedInitialState"
    )
    type: Literal["ProductOrder"] = Field(alias="@type")

    @field_validator("product_order_item")
    @classmethod
    def _item_ids_are_unique(cls, items: list[ProductOrderItemCreate]) -> list[ProductOrderItemCreate]:
        ids = [item.id for item in items]
        if len(set(ids)) != len(ids):
            raise ValueError("productOrderItem ids must be unique within the order")
        return items


class ProductOrderItem(TmfModel):
    """ProductOrderItem as the carrier returns it, with its own state."""

    id: str
    action: ItemAction
    quantity: int | None = None
    product_offering: ProductOfferingRef = Field(alias="productOffering")
    product: ProductRefOrValue | None = None
    state: ProductOrderItemState
    type: Literal["ProductOrderItem"] = Field(default="ProductOrderItem", alias="@type")


class ProductOrderItemRef(TmfModel):
    """ProductOrderItemRef: points an error message at the item it concerns."""

    product_order_id: str = Field(alias="productOrderId")
    product_order_item_id: str = Field(alias="productOrderItemId")
    type: Literal["ProductOrderItemRef"] = Field(default="ProductOrderItemRef", alias="@type")


class ProductOrderErrorMessage(TmfModel):
    """ProductOrderErrorMessage: why an order failed."""

    code: str
    reason: str
    message: str | None = None
    status: str | None = None
    timestamp: datetime
    product_order_item: list[ProductOrderItemRef] = Field(default_factory=list, alias="productOrderItem")
    type: Literal["ProductOrderErrorMessage"] = Field(default="ProductOrderErrorMessage", alias="@type")


class ProductOrder(TmfModel):
    """ProductOrder: the resource returned by every productOrder operation."""

    id: str
    href: str
    state: ProductOrderState
    creation_date: datetime = Field(alias="creationDate")
    expected_completion_date: datetime | None = Field(default=None, alias="expectedCompletionDate")
    completion_date: datetime | None = Field(default=None, alias="completionDate")
    external_id: list[ExternalIdentifier] = Field(default_factory=list, alias="externalId")
    product_order_item: list[ProductOrderItem] = Field(alias="productOrderItem")
    product_order_error_message: list[ProductOrderErrorMessage] | None = Field(
        default=None, alias="productOrderErrorMessage"
    )
    description: str | None = None
    category: str | None = None
    priority: str | None = None
    type: Literal["ProductOrder"] = Field(default="ProductOrder", alias="@type")


class Error(TmfModel):
    """Error: the body of every 4xx and 5xx answer."""

    code: str
    reason: str
    message: str | None = None
    status: str | None = None
    reference_error: str | None = Field(default=None, alias="referenceError")
    type: Literal["Error"] = Field(default="Error", alias="@type")


class HubCreate(TmfModel):
    """Hub_FVO: the body of `POST /hub`, where the listener wants its notifications."""

    callback: str
    query: str | None = None
    # Optional here although Extensible requires it: clients commonly leave it out.
    type: str | None = Field(default=None, alias="@type")

    @field_validator("callback")
    @classmethod
    def _callback_is_an_absolute_http_url(cls, callback: str) -> str:
        try:
            parts = urlsplit(callback)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 - raises ValueError when the port is not a number
        except ValueError:
            valid = False
        if not valid or any(ch.isspace() or not ch.isprintable() for ch in callback):
            raise ValueError("callback must be an absolute http or https URL")
        return callback


class Hub(TmfModel):
    """Hub: a registered listener."""

    id: str
    href: str
    callback: str
    query: str | None = None
    type: Literal["Hub"] = Field(default="Hub", alias="@type")


class ProductOrderStateChangeEventPayload(TmfModel):
    """What a ProductOrderStateChangeEvent is about: the order as it is after the change."""

    product_order: ProductOrder = Field(alias="productOrder")


class ProductOrderStateChangeEvent(TmfModel):
    """ProductOrderStateChangeEvent (an Event), posted to each hub's listener."""

    event_id: str = Field(alias="eventId")
    event_time: datetime = Field(alias="eventTime")
    event_type: Literal["ProductOrderStateChangeEvent"] = Field(
        default="ProductOrderStateChangeEvent", alias="eventType"
    )
    correlation_id: str | None = Field(default=None, alias="correlationId")
    domain: str = DOMAIN
    title: str = "ProductOrderStateChangeEvent"
    event: ProductOrderStateChangeEventPayload
    type: Literal["ProductOrderStateChangeEvent"] = Field(
        default="ProductOrderStateChangeEvent", alias="@type"
    )
    base_type: Literal["Event"] = Field(default="Event", alias="@baseType")
