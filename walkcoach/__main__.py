"""`python -m walkcoach ARGS` is `walkcoach ARGS`."""

import sys

from walkcoach.device.cli.cli import main

sys.exit(main())
