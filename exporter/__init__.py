"""citrix-cloud-exporter: Prometheus exporter for Citrix Cloud licensing and DaaS."""

__version__ = "0.1.0"
