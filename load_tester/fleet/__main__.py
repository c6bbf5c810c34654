"""`python -m load_tester.fleet`: run a fleet of simulated OCPP chargers (options: --help)."""

import sys

from load_tester.fleet.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m load_tester.fleet"))
