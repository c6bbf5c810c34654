"""The load tester's day scenario (`--scenario day`): one simulated day of EV arrivals played against a grid.

arrivals (the arrival curve, the seeded schedule, the grid the default rate is sized for), grid_sampler (every
substation's /load and /metrics, sampled), play (sending the day's arrivals at their moments), stats (what a
played day comes to), report and chart (its tables and its --plot), output (how a played scenario ends: report,
JSON, chart, exit code), scenario (the entry point, and the day against a running grid) and compare (fixed
against fair on grids it starts). They use the load tester's general parts (client, progress, run, stats,
report); none of those imports this package: only cli does, to run it.
"""
