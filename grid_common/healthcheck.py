"""Container healthcheck: `python -m grid_common.healthcheck URL` exits 0 when URL answers 2xx.

The images have no curl; the standard library is enough.
"""

import sys
import urllib.request


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m grid_common.healthcheck URL", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(argv[1], timeout=2) as response:
            return 0 if 200 <= response.status < 300 else 1
    except Exception as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
