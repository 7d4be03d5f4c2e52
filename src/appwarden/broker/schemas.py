"""Request and response models of the data API (for validation of the detokenize body and for the
OpenAPI document vendors read; list and get bodies are serialised with orjson directly)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from appwarden.web.text import Body


class CustomerOut(BaseModel):
    """One customer as this app sees it. Fields not granted are absent; granted but missing are null."""

    model_config = ConfigDict(extra="allow")
    id: str = Field(description="This app's own stable pseudonymous id for the person (`cus_…`).")


class CustomerPage(BaseModel):
    data: list[CustomerOut]
    next_cursor: str | None = Field(description="Opaque cursor for the next page; null on the last page.")


class CustomerOne(BaseModel):
    data: CustomerOut


class TransactionOut(BaseModel):
    id: str = Field(description="`txn_…`")
    store: str = Field(description="`st_…`")
    amount: int
    occurred_at: str
    customer: str | None = Field(description="This app's id for the customer, or null (no member).")


class TransactionPage(BaseModel):
    data: list[TransactionOut]
    next_cursor: str | None


class DetokenizeIn(Body):
    purpose: str = Field(min_length=1, max_length=500, description="Why the values are needed (audited).")
    tokens: list[str] = Field(
        min_length=1, max_length=1000, description="`tok_…` values this app received (1..100)."
    )


class DetokenizedValue(BaseModel):
    token: str
    field: str
    value: Any


class DetokenizeOut(BaseModel):
    data: list[DetokenizedValue]


class StoreOut(BaseModel):
    id: str = Field(description="`st_…`")
    name: str


class StorePage(BaseModel):
    data: list[StoreOut]
    next_cursor: str | None


class ProductOut(BaseModel):
    id: str = Field(description="`prd_…`")
    name: str
    price: int = Field(description="Yen, tax included.")
    store: str | None = Field(description="`st_…` of the one store that sells it, or null: every store.")


class ProductPage(BaseModel):
    data: list[ProductOut]
    next_cursor: str | None
