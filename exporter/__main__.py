"""`python -m exporter` is the same program as the `citrix-cloud-exporter` command."""

import sys

from .cli import main

sys.exit(main())
