-- wrk script: POST a charging request, and print a machine-readable summary at the end.
wrk.method = "POST"
-- BENCH_ENERGY_KWH sets how long a session lasts at 11 kW (the bench's substations run in real time).
wrk.body = string.format('{"energy_kwh": %s, "max_power_kw": 11}', os.getenv("BENCH_ENERGY_KWH") or "11")
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
