"""Which customers changed since a reader last looked, without scanning every customer.

A scrape at thousands of customers used to ask every source for every customer's version and
compare them all, on the event loop, to find the few that changed. Instead, whatever changes a
customer's own metrics touches it here, and a reader keeps a cursor: `since(cursor)` walks
back from the most recent change and stops at the cursor, so its cost is the number of
customers changed since, not the number of customers.
"""

from __future__ import annotations


class ChangeLog:
    """Customers in the order they last changed, each with the sequence number of that change."""

    def __init__(self) -> None:
        self._seq = 0
        self._last: dict[str, int] = {}  # customer -> its last change; latest last

    def touch(self, customer_id: str) -> None:
        self._seq += 1
        self._last.pop(customer_id, None)  # re-inserted at the end: the order stays by change
        self._last[customer_id] = self._seq

    def since(self, cursor: int) -> tuple[int, list[str]]:
        """(the cursor to pass next time, the customers changed after `cursor`)."""
        changed = []
        for customer_id in reversed(self._last):
            if self._last[customer_id] <= cursor:
                break
            changed.append(customer_id)
        return self._seq, changed

    def forget(self, customer_id: str) -> None:
        """Drop a customer that no longer exists (readers learn of it by a resync)."""
        self._last.pop(customer_id, None)
