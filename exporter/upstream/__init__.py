"""Talking to Citrix Cloud: bearer tokens and authenticated, retried API requests."""
