"""The wire protocol: every shape that crosses between services, one module each, and the rules for names,
ids and headers. Each message's fields are declared once (a msgspec Struct): its encoding, decoding and
JSON Schema follow from the declaration, and the OpenAPI documents are built from those schemas
(grid_common/openapi.py); tests/unit/test_protocol.py checks that what each writes is what its schema says.

Who speaks what:
- an EV, the gateway and the balancer: a ChargeRequest (charge_request.py);
- the balancer to a substation: an Admission (a ChargeRequest and the session id the balancer chose);
- a substation to the balancer: a LoadReport (load_report.py: polled, and in every admission answer);
- every service to its caller: a session (session_report.py).
"""

from grid_common.protocol.charge_request import (
    CHARGE_REQUEST_FIELDS,
    DEFAULT_ENERGY_KWH,
    DEFAULT_MAX_POWER_KW,
    DEFAULT_MIN_POWER_KW,
    MAX_ENERGY_KWH,
    MAX_POWER_KW,
    MIN_POWER_KW,
    PRIORITIES,
    Admission,
    ChargeRequest,
    InvalidRequest,
    admission_body,
    parse_admission,
    parse_charge_request,
)
from grid_common.protocol.headers import (
    BALANCER_ID,
    IDEMPOTENCY_KEY,
    IDEMPOTENCY_KEY_MAX_LENGTH,
    IDEMPOTENT_REPLAYED,
    OTHERS_EV_POWER_CONDITION,
    OTHERS_SESSIONS_CONDITION,
    REQUEST_DEADLINE,
    SESSION_TOKEN,
)
from grid_common.protocol.load_report import ALLOCATIONS, MAX_COUNT, Allocation, LoadReport, MalformedReport
from grid_common.protocol.names import (
    BALANCER_ID_PATTERN,
    SESSION_EXISTS,
    SESSION_ID_PATTERN,
    SESSION_TOKEN_PATTERN,
    SUBSTATION_NAME_PATTERN,
    VEHICLE_ID_PATTERN,
    is_balancer_id,
    is_idempotency_key,
    is_session_id,
    is_session_token,
    is_substation_name,
    iso_utc,
    new_session_id,
    substation_of,
)
from grid_common.protocol.schemas import (
    ADMISSION_ANSWER_SCHEMA,
    ADMISSION_SCHEMA,
    CHARGE_REQUEST_SCHEMA,
    COMPONENTS,
    LOAD_REPORT_SCHEMA,
    SESSION_SCHEMA,
)
from grid_common.protocol.session_report import (
    SESSION_STATES,
    AdmissionAnswer,
    SchedulePeriod,
    SessionJson,
    SessionReport,
    SessionState,
    admission_answer,
    is_session_report,
)

__all__ = [
    "ADMISSION_ANSWER_SCHEMA", "ADMISSION_SCHEMA", "ALLOCATIONS", "BALANCER_ID", "BALANCER_ID_PATTERN",
    "CHARGE_REQUEST_FIELDS", "CHARGE_REQUEST_SCHEMA", "COMPONENTS", "DEFAULT_ENERGY_KWH", "DEFAULT_MAX_POWER_KW",
    "DEFAULT_MIN_POWER_KW", "IDEMPOTENCY_KEY", "IDEMPOTENCY_KEY_MAX_LENGTH", "IDEMPOTENT_REPLAYED",
    "LOAD_REPORT_SCHEMA", "MAX_COUNT", "MAX_ENERGY_KWH", "MAX_POWER_KW", "MIN_POWER_KW",
    "OTHERS_EV_POWER_CONDITION", "OTHERS_SESSIONS_CONDITION", "PRIORITIES", "REQUEST_DEADLINE", "SESSION_EXISTS",
    "SESSION_ID_PATTERN", "SESSION_SCHEMA", "SESSION_STATES", "SESSION_TOKEN", "SESSION_TOKEN_PATTERN",
    "SUBSTATION_NAME_PATTERN", "VEHICLE_ID_PATTERN", "Admission", "AdmissionAnswer", "Allocation",
    "ChargeRequest", "InvalidRequest", "LoadReport", "MalformedReport", "SchedulePeriod", "SessionJson",
    "SessionReport", "SessionState", "admission_answer", "admission_body", "is_balancer_id",
    "is_idempotency_key", "is_session_id", "is_session_report", "is_session_token", "is_substation_name",
    "iso_utc", "new_session_id", "parse_admission", "parse_charge_request", "substation_of",
]  # fmt: skip
