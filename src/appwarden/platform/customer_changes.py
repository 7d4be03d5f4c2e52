"""What the platform tells other capabilities when customers change, and who is listening.

Capabilities that keep something derived from ``customers`` (attribution's blind index) register a hook
with :func:`on_customers_changed`. Every platform write path (``platform.service``: ``add_customers``,
``update_customer``, ``delete_customer``, ``customers_loaded``) calls :func:`notify` after its write,
with the same session: a hook's writes share the caller's transaction, commit with it and roll back
with it, and an exception in a hook undoes the customer write too.

Registration is explicit and happens in one composition place (``appwarden.wiring.wire``), never as
an import side effect and never through SQLAlchemy ``Session`` events: a write that goes around the
platform's write paths is not seen by anyone, so there is exactly one way to change a customer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from appwarden.hooks import Hook

# (customers done, customers in total) of a hook's rebuild after a bulk load.
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class CustomerChange:
    """Customers written by one platform write path, as of after the write.

    ``fields`` are the columns whose values changed for the ``updated`` customers; an added or deleted
    customer changed in every field. ``companies`` are the companies the customers belonged to before
    or belong to after the write (a customer moved between companies touches both).

    ``loaded`` marks a bulk load (``customers_loaded``): customers of ``companies`` were inserted in
    bulk with Core and are too many to list, so a hook rebuilds what it derives instead of refreshing
    ids; ``progress``, when given, is told how far that rebuild has come.
    """

    added: tuple[int, ...] = ()
    updated: tuple[int, ...] = ()
    deleted: tuple[int, ...] = ()
    companies: frozenset[int] = frozenset()
    fields: frozenset[str] = frozenset()
    loaded: bool = False
    progress: Progress | None = None
    # The deleted customers' public ids (the rows are gone when hooks run: an erasure request names them).
    deleted_public_ids: tuple[str, ...] = ()

    def touches(self, fields: frozenset[str] | set[str] | tuple[str, ...]) -> list[int]:
        """The customers whose ``fields`` may have changed: every added, deleted and (when one of
        ``fields`` changed) updated customer."""
        ids = [*self.added, *self.deleted]
        if self.fields.intersection(fields):
            ids += self.updated
        return ids


CustomersChanged = Callable[[Session, CustomerChange], object]

customers_changed: Hook[[Session, CustomerChange]] = Hook("customers changed")


def on_customers_changed(hook: CustomersChanged) -> None:
    """Call ``hook(session, change)`` after every customer write, in the writer's transaction.

    Registering the same hook again is a no-op, so composition can run more than once per process.
    """
    customers_changed.register(hook)


def registered() -> tuple[CustomersChanged, ...]:
    """The hooks registered so far, in registration order."""
    return customers_changed.registered()


def notify(session: Session, change: CustomerChange) -> None:
    """Run every hook on ``change`` (platform write paths only).

    A write with nobody listening means composition never ran: the blind index would silently miss
    these customers and attribution would not find them in a leak, so the hook refuses instead.
    """
    customers_changed(session, change)
