"""The headers the services speak, beyond HTTP's own."""

# Which balancer process asks a substation: its load reports then say what *other* balancers' sessions
# draw there, and its admissions may be conditional on that (OTHERS_EV_POWER_CONDITION): at most the kW
# under which its choice of the substation stands. A substation where others' sessions draw more answers
# 412 with its load, and the balancer chooses again.
BALANCER_ID = "Balancer-Id"
OTHERS_EV_POWER_CONDITION = "If-Others-EV-Power-At-Most"
# The same for a choice made on what a newcomer would get there: at most this many sessions of others.
OTHERS_SESSIONS_CONDITION = "If-Others-Sessions-At-Most"
IDEMPOTENCY_KEY = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX_LENGTH = 255
IDEMPOTENT_REPLAYED = "Idempotent-Replayed"
# Unix time after which a call that may change state must not be acted on (grid_common/deadline.py).
REQUEST_DEADLINE = "Request-Deadline"
# The token a session is named with (`<substation>.<token>`), chosen by the gateway and kept with an
# Idempotency-Key, so that a retry can find the session an earlier attempt made.
SESSION_TOKEN = "Session-Token"
