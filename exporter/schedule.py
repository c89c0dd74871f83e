"""Where in its interval each (customer, collector) job polls, so polls spread instead of bursting.

If every customer's poll of a collector fired at the same instant, 1,000 customers on a
15-minute interval would send ~2,000 requests at once every 15 minutes and nothing in between.
Instead each job has a stable offset within its interval, derived from its key by sha256 (not
Python's `hash()`, which is salted per process), so the same job polls at the same point of
the interval after every restart and on any host, and 1,000 jobs fall evenly over it:
~1-2 requests/s.

The slots of a job are the wall-clock times `t` with `(t - offset) % interval == 0`, like
Prometheus' scrape offsets. The wall clock is read once, when a job's loop starts, to find a
monotonic time that is a slot (`slot_anchor`); after that the schedule runs on the monotonic
clock, so a wall-clock step never bunches or stalls polls.

The first poll runs at once (readiness must not wait an interval). Every later poll starts at
the first slot at least half an interval after the previous poll *started*: steady state is
one poll per slot (fixed rate, whatever each poll takes); the poll after the first comes
between half an interval and an interval and a half later, never right after it; a poll that
overruns the next slot is followed at once by the next, which never overlaps it, and the one
after returns to the slots, so an upstream outage that delays every customer does not leave
them polling in step afterwards.
"""

from __future__ import annotations

import hashlib
import math

# The earliest a poll may follow the previous one's start, in intervals.
MIN_GAP = 0.5


def slot_fraction(customer_id: str, collector: str) -> float:
    """A stable, evenly distributed fraction in [0, 1) for one (customer, collector) job."""
    key = f"{customer_id}\0{collector}".encode()
    digest = hashlib.sha256(key).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def spread_offset(customer_id: str, collector: str, interval: float) -> float:
    """Seconds into each interval at which the job polls, in [0, interval)."""
    return slot_fraction(customer_id, collector) * interval


def slot_anchor(offset: float, interval: float, wall_now: float, monotonic_now: float) -> float:
    """A monotonic time that is one of the job's slots (the latest one not after now)."""
    return monotonic_now - (wall_now - offset) % interval


def delay_after_poll(started: float, now: float, anchor: float, interval: float) -> float:
    """Seconds to wait, at monotonic `now`, before the poll after one that began at `started`:
    until the first slot at least `MIN_GAP` intervals after `started`; 0 if it has passed."""
    earliest = started + MIN_GAP * interval
    due = anchor + math.ceil((earliest - anchor) / interval) * interval
    return max(0.0, due - now)
