"""Load tester for the smart grid gateway: fire charging requests and summarise what came back.

Standard library only, so it runs with any Python 3.11 without installing anything; only --plot needs
matplotlib (`pip install matplotlib`), imported when the option is given, and only --compare needs the
project's requirements (it starts the services). The day scenario reads the grid's background profile from
grid_common/simulated_time.py (standard library only too).

Usage examples:

    # 16 body-less requests, one after another, each reply printed
    python load_tester/test.py

    # 200 requests, 8 at a time, summary only, also written as JSON
    python load_tester/test.py -n 200 -c 8 -q --json summary.json

    # Each request asks for 22 kWh at up to 11 kW, as vehicles EV-1, EV-2, ...
    python load_tester/test.py -n 50 --energy-kwh 22 --max-power-kw 11

    # A fixed JSON body for every request, against another gateway and balancer
    python load_tester/test.py --body '{"max_power_kw": 7.4}' --url http://grid.example:6000 \\
        --balancer-url http://grid.example:7000

    # Chart every substation's utilization and sessions over time, sampling the balancer's
    # /substations every 0.25 s during the run and for 25 s after it, while the sessions end
    python load_tester/test.py -n 60 -c 4 -q --energy-kwh 22 --plot utilization.png --plot-tail 25

    # A day of EV arrivals in 120 s (the default): a Poisson process following a daily curve with a morning
    # bump and an evening peak around 18:30 (load_tester/day/arrivals.py), each car a request with wait: true.
    # The grid's substations must run TIME_SCALE=720 (86400 / 120) for the played day to be theirs: it starts
    # at the hour the grid has now, and warns if the grid's clock does not follow. Compose runs 360: 240 s.
    python load_tester/test.py --scenario day --day-seconds 240 --plot day.png --json day.json

    # The same arrivals on a fresh grid of the compose shape with ALLOCATION=fixed, then with ALLOCATION=fair,
    # both started here (tools/stack.py), reported side by side; the default peak rate oversubscribes the
    # evening peak 3 times (--peak-rate to change it, --seed for other arrivals)
    python load_tester/test.py --scenario day --compare --plot fixed-vs-fair.png

    # 10 simulated OCPP chargers with cars against the OCPP service for 60 s (docs/fleet.md; needs the
    # project's requirements; python -m load_tester.fleet has all the fleet's options)
    python load_tester/test.py --chargers 10 --ocpp-url ws://127.0.0.1:9000/ocpp

Every request has a timeout; HTTP error statuses, timeouts and connection errors are counted as
outcomes, never raised. The exit code is 0 if at least one request got a 2xx answer (or none were
asked for) and 1 if every request failed; the chart of --plot never changes it.

`python -m load_tester` (from the repository root) takes the same options.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, this folder comes first on the path, where the package's own modules (run, stats, ...)
    # would stand in for any top-level module of the same name: the repository root takes its place, so that
    # load_tester imports as the package it is.
    here = Path(__file__).resolve().parent
    if sys.path and sys.path[0] and Path(sys.path[0]).resolve() == here:
        sys.path[0] = str(here.parent)
    else:  # python -P or -I: nothing was put first
        sys.path.insert(0, str(here.parent))

    from load_tester.cli import command

    command()
