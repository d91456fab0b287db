"""`python -m topology serve books|circulation|gateway …`: the same as `bench serve <role>`."""

import sys

from topology.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
