"""Monitor Service enums (integers in the API) as the snake_case label values we export.

Source: "Enums, error codes, and descriptions" of the Monitor OData model (see the API
reference). An integer not listed maps to `unknown` and is counted as odd data.
"""

from __future__ import annotations

import re


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _table(names: dict[int, str]) -> dict[int, str]:
    return {value: _snake(name) for value, name in names.items()}


CONNECTION_STATE = _table(
    {0: "Unknown", 1: "Connected", 2: "Disconnected", 3: "Terminated", 4: "PreparingSession",
     5: "Active", 6: "Reconnecting", 7: "NonBrokeredSession", 8: "Other", 9: "Pending"}
)  # fmt: skip
REGISTRATION_STATE = _table({0: "Unknown", 1: "Registered", 2: "Unregistered"})
POWER_STATE = _table(
    {0: "Unknown", 1: "Unavailable", 2: "Off", 3: "On", 4: "Suspended", 5: "TurningOn",
     6: "TurningOff", 7: "Suspending", 8: "Resuming", 9: "Unmanaged", 10: "NotSupported",
     11: "VirtualMachineNotFound"}
)  # fmt: skip
FAULT_STATE = _table(
    {0: "Unknown", 1: "None", 2: "FailedToStart", 3: "StuckOnBoot", 4: "Unregistered",
     5: "MaxCapacity", 6: "VirtualMachineNotFound"}
)  # fmt: skip
# Only these count as faulted; Unknown and None do not.
FAULTED_STATES = {value: name for value, name in FAULT_STATE.items() if value >= 2}
DELIVERY_TYPE = _table({0: "DesktopsOnly", 1: "AppsOnly", 2: "DesktopsAndApps"})
SESSION_SUPPORT = _table({0: "Unknown", 1: "SingleSession", 2: "MultiSession"})
SESSION_FAILURE_CODE = _table(
    {0: "Unknown", 1: "None", 2: "SessionPreparation", 3: "RegistrationTimeout",
     4: "ConnectionTimeout", 5: "Licensing", 6: "Ticketing", 7: "Other", 8: "GeneralFail",
     9: "MaintenanceMode", 10: "ApplicationDisabled", 11: "LicenseFeatureRefused",
     12: "NoDesktopAvailable", 13: "SessionLimitReached", 14: "DisallowedProtocol",
     15: "ResourceUnavailable", 16: "ActiveSessionReconnectDisabled", 17: "NoSessionToReconnect",
     18: "SpinUpFailed", 19: "Refused", 20: "ConfigurationSetFailure",
     21: "MaxTotalInstancesExceeded", 22: "MaxPerUserInstancesExceeded",
     23: "CommunicationError", 24: "MaxPerMachineInstancesExceeded",
     25: "MaxPerEntitlementInstancesExceeded", 100: "NoMachineAvailable",
     101: "MachineNotFunctional"}
)  # fmt: skip
