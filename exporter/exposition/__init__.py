"""Exposition text for /metrics: results rendered once when published, joined at scrape time.

`blocks` renders one result with prometheus_client and cuts it into per-family blocks, and
joins many results into one valid document; `own` keeps the exporter's per-customer metrics as
blocks, rendered again only for the customers whose values changed; `scrape` builds the body a
scrape is served: the joined blocks (cached until the snapshot store changes) followed by the
exporter's own metrics as they are at that moment, in the negotiated format, gzipped when asked.
"""
