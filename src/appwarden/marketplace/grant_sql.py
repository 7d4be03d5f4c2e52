"""The marketplace's part of a grant lookup: columns and joins over ``apps`` and ``app_versions``.

The data API authenticates every request with one query over the presented token, its connection, the
app and the app version the company consented to (``oauth.tokens.lookup_access_token``; restricted
tokens in ``oauth.restricted``). Loading ORM rows, or a query per owner, cost more than the SQL on that
hot path, so the lookup stays one query, and the SQL over the marketplace's tables is written here:
the caller puts :data:`APP_GRANT` in its select list and joins its rows with :func:`join_app_grant`.
Nothing in this module runs a query.

The version is the one the company consented to, not the newest: its approved scopes are frozen, so a
company that has not consented to a later version keeps exactly its old grant.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import ColumnExpressionArgument, Select

from appwarden.marketplace.models import App, AppVersion


class AppGrantColumns(NamedTuple):
    """Column expressions for a caller's select list, valid once :func:`join_app_grant` joined them."""

    id: Any
    slug: Any
    listing_state: Any  # a ``LifecycleState``
    approved_scopes: Any  # the app's: those of its version in force
    restricted_policy: Any  # a ``RestrictedPolicy``
    version_approved: Any  # the consented version's; NULL when the connection names none (older rows)
    grandfathered: Any  # listed before screening: its access tokens still carry raw identifying fields


APP_GRANT = AppGrantColumns(
    App.id,
    App.slug,
    App.listing_state,
    App.approved_scopes,
    App.restricted_policy,
    AppVersion.approved_scopes,
    App.grandfathered,
)


def join_app_grant(
    query: Select[Any],
    *,
    app_id: ColumnExpressionArgument[int],
    version: ColumnExpressionArgument[int | None],
) -> Select[Any]:
    """``query`` joined to the app its column ``app_id`` names (inner: a token's app exists) and, outer,
    to that app's version numbered by its column ``version`` (the consented one; a connection made
    before versions were recorded names none): the FROM that :data:`APP_GRANT` reads."""
    return query.join(App, App.id == app_id).outerjoin(
        AppVersion, (AppVersion.app_id == App.id) & (AppVersion.number == version)
    )
