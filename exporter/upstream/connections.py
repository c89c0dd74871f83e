"""Per-customer connections to Citrix Cloud: the HTTP session each customer's requests use."""

from __future__ import annotations

import ssl

from ..config import CustomerConfig


def ssl_context(customer: CustomerConfig) -> ssl.SSLContext | bool:
    """System trust plus the customer's extra CA bundle, if any (for TLS-inspecting proxies)."""
    if not customer.ca_file:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=customer.ca_file)
    return context
