"""Collectors: each turns one area of the Citrix Cloud APIs into metric families per poll."""
