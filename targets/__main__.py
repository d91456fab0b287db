"""`python -m targets serve <protocol>`: the same as `bench serve`."""

import sys

from targets.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
