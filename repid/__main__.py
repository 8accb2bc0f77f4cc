"""`python -m repid`: the `repid` command."""

import sys

from repid.cli import main

if __name__ == "__main__":
    sys.exit(main())
