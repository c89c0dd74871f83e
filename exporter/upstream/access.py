"""What to grant when Citrix Cloud answers 403: the message of the failed poll says it.

A 403 means the API client authenticated but may not read this API: either the administrator
who created it (an API client has that administrator's access) lacks the access the API needs,
or the configured customer id is not the API client's own customer. Unlike a 404 ("not
entitled", a state), a 403 is a failure someone must fix, so the message names the fix.
"""

from __future__ import annotations

# Endpoint label prefix -> the access that API needs. First match wins.
ACCESS_BY_ENDPOINT = (
    ("monitor_", "a DaaS role that reads monitoring data (e.g. Read Only Administrator)"),
    ("license_servers_", "access to Licensing"),
    ("licensing_", "access to Licensing"),
    ("partner_", "the partner account's Customer Dashboard"),
)
WHERE = "Identity and Access Management > Administrators"


def access_hint(endpoint: str) -> str:
    """What to grant for a 403 from `endpoint` (a `citrix_api_requests_total` endpoint label)."""
    need = next(
        (need for prefix, need in ACCESS_BY_ENDPOINT if endpoint.startswith(prefix)),
        "access to this Citrix Cloud service",
    )
    return (
        f"grant the API client's administrator {need} ({WHERE}), or check that customer_id is "
        "the API client's own customer"
    )
