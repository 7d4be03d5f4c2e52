"""The platform's part of another package's one query over ``companies``: a column and its join.

The data API's token lookup (``oauth.tokens.lookup_access_token``) reads whether the token's company
is a test company in the same query as the token (an app not yet listed may serve test companies
only); the SQL over the platform's table is written here. Nothing in this module runs a query.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnExpressionArgument, Select

from appwarden.platform.models import Company

# For a caller's select list, once :func:`join_company` joined the table: the company is a test company.
IS_TEST_COMPANY = Company.is_test


def join_company(query: Select[Any], *, company_id: ColumnExpressionArgument[int]) -> Select[Any]:
    """``query`` joined (inner) to the company its column ``company_id`` names."""
    return query.join(Company, Company.id == company_id)
