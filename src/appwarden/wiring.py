"""Composition: the one place where capabilities are connected to the platform's customer writes.

The platform (a lower layer) cannot import attribution (a higher one), yet attribution's blind index
must change in the same transaction as the customers it is derived from. So the platform announces
every customer write (``platform.customer_changes``) and this module, above both, registers who
listens. Every entry point calls :func:`wire` before it writes: the app factory
(``app.create_app``), the CLI (``cli.run``), the test suite (``tests/conftest.py``) and the bench
scripts that write customers. A new derived index is registered here, nowhere else.

The store membership bitmaps are platform's own and are refreshed by its write paths directly.
"""

from __future__ import annotations

from appwarden.attribution.blind_index import refresh_changed_customers
from appwarden.platform.customer_changes import on_customers_changed


def wire() -> None:
    """Register every capability's reaction to customer writes. Idempotent: call it from each entry point."""
    on_customers_changed(refresh_changed_customers)
