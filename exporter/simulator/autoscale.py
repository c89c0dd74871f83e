"""An autoscaled delivery group: its machines are powered off at night, as Autoscale does.

A powered-off machine is unregistered by design, so "unregistered" alone is no outage; a
delivery group whose powered-on machines are all unregistered is. The demo's acme-demo tenant
has one such group, `DG-Autoscale`, that follows the demo clock: from NIGHT_START to NIGHT_END
UTC all but AWAKE_AT_NIGHT of its machines are off and unregistered. For tests a state can be
pinned (`Autoscale.pinned`, or `scenarios.autoscale_night` / `autoscale_outage`):

- "day": every machine on and registered;
- "night": AWAKE_AT_NIGHT machines on and registered, the others off and unregistered;
- "outage": every machine on and none registered (the broker lost them all).

MonitorLife leaves the group's machines alone (no random unregistering), so the states are
exactly these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .monitor import PowerState, RegistrationState

if TYPE_CHECKING:
    from .monitor import MonitorData

AUTOSCALE_GROUP = "DG-Autoscale"
NIGHT_START, NIGHT_END = 20, 6  # UTC hours: night is [20:00, 06:00)
AWAKE_AT_NIGHT = 1
STATES = ("day", "night", "outage")


def _target(index: int, state: str) -> tuple[int, int]:
    """(registration, power) of the group's `index`-th machine in `state`."""
    if state == "outage":
        return RegistrationState.UNREGISTERED, PowerState.ON
    if state == "night" and index >= AWAKE_AT_NIGHT:
        return RegistrationState.UNREGISTERED, PowerState.OFF
    return RegistrationState.REGISTERED, PowerState.ON


@dataclass
class Autoscale:
    """The autoscaled group of one tenant and the state it shows."""

    group_id: str
    pinned: str | None = None  # one of STATES; None: follow the clock
    shown: str | None = None  # the state last applied

    def state_at(self, now: datetime) -> str:
        if self.pinned is not None:
            return self.pinned
        return "night" if now.hour >= NIGHT_START or now.hour < NIGHT_END else "day"

    def follow(self, data: MonitorData, now: datetime) -> None:
        """Put the group's machines in the state for `now`, if they are not in it yet."""
        state = self.state_at(now)
        if state == self.shown:
            return
        machines = data.machines_in(self.group_id)
        ids = {machine["Id"] for machine in machines}
        for session in data.open_sessions():
            if session["MachineId"] in ids and state != "day":
                data.end_session(session["SessionKey"], at=now, exit_code=1)
        for index, machine in enumerate(machines):
            registration, power = _target(index, state)
            data.set_registration_state(machine["Id"], registration, at=now, power_state=power)
        self.shown = state


def add_autoscaled_group(data: MonitorData, machines: int, at: datetime) -> Autoscale:
    """Add `AUTOSCALE_GROUP` with `machines` machines to `data`; it follows `data`'s clock."""
    group = data.add_desktop_group(AUTOSCALE_GROUP, delivery_type=2, session_support=2)
    for n in range(machines):
        data.add_machine(group["Id"], name=f"CORP\\AUTO-VDA{n + 1:03d}", at=at)
    data.autoscale = Autoscale(group["Id"])
    data.autoscale.follow(data, at)
    return data.autoscale
