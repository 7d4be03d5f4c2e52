"""``platform.customer_rows``, the data API's reads of ``customers``: scoped to one company, filtered by
the served predicate in the same query, only person fields by name."""

from __future__ import annotations

import pytest

from appwarden.platform.customer_rows import customer_rows, field_values, real_or_among, served_ids
from appwarden.platform.service import update_customer
from conftest import World


def test_rows_are_the_companys_and_served_only(world: World) -> None:
    t0, t1 = world.tenants
    mine = [c.id for c in t0.customers[:4]]
    canary, theirs = mine[1], t1.customers[0].id
    with world.db.session() as session:
        update_customer(session, canary, {"is_canary": True})
    with world.db.sessionmaker() as session:
        wanted = [*mine, theirs]
        rows = customer_rows(session, t0.company.id, wanted, ("name", "points"), served=real_or_among([]))
        assert sorted(r[0] for r in rows) == sorted(set(mine) - {canary})
        by_id = {c.id: c for c in t0.customers}
        assert all(tuple(r) == (r[0], by_id[r[0]].name, by_id[r[0]].points) for r in rows)
        served = real_or_among([canary])
        assert (
            sorted(r[0] for r in customer_rows(session, t0.company.id, wanted, ("name",), served=served))
            == mine
        )
        assert [tuple(r) for r in customer_rows(session, t0.company.id, [mine[0]], (), served=served)] == [
            (mine[0],)
        ]
        assert customer_rows(session, t0.company.id, [], ("name",), served=served) == []
        assert served_ids(session, t0.company.id, wanted, served=real_or_among([])) == set(mine) - {canary}
        # Detokenizing names whom the caller was served: canaries included, another company's never.
        phones = field_values(session, t0.company.id, "phone", wanted)
        assert phones == {c.id: c.phone for c in t0.customers[:4]}
        with pytest.raises(ValueError, match="is_canary"):
            customer_rows(session, t0.company.id, mine, ("is_canary",), served=served)
        with pytest.raises(ValueError, match="company_id"):
            field_values(session, t0.company.id, "company_id", mine)
