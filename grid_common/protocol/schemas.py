"""The protocol's JSON Schemas, as the OpenAPI documents name them: made by msgspec from each message's
declaration, so that a field's schema is never written apart from the field."""

from __future__ import annotations

import json

import msgspec

from grid_common.protocol.charge_request import Admission, ChargeRequest, StartRequest
from grid_common.protocol.charger import ChargerFeed, MeterAnswer, MeterReadings
from grid_common.protocol.load_report import LoadReport
from grid_common.protocol.session_report import AdmissionAnswer, SessionJson

# The names the OpenAPI documents have always used, where a type's own name differs.
NAMES = {"SessionJson": "Session", "LoadReport": "Load"}
REF = "#/components/schemas/{name}"


def component_schemas() -> dict[str, dict]:
    """Every message's schema, and the schemas they refer to, by component name."""
    _, components = msgspec.json.schema_components(
        [
            ChargeRequest,
            StartRequest,
            Admission,
            AdmissionAnswer,
            SessionJson,
            LoadReport,
            ChargerFeed,
            MeterReadings,
            MeterAnswer,
        ],
        ref_template=REF,
    )
    text = json.dumps(components)
    for name, public in NAMES.items():
        text = text.replace(f'"{REF.format(name=name)}"', f'"{REF.format(name=public)}"')
    schemas = {NAMES.get(name, name): schema for name, schema in json.loads(text).items()}
    for request in (schemas["ChargeRequest"], schemas["StartRequest"], schemas["Admission"]):
        fields = request["properties"]
        # A parsed request always has these; a request sent may leave them out (or send a null vehicle id),
        # and gets one made up, or the lesser of its maximum and 1.4 kW: no single default to show.
        fields["vehicle_id"]["type"] = ["string", "null"]
        fields["vehicle_id"].pop("default")
        fields["min_power_kw"].pop("default")
    return schemas


COMPONENTS = component_schemas()
CHARGE_REQUEST_SCHEMA = COMPONENTS["ChargeRequest"]
START_REQUEST_SCHEMA = COMPONENTS["StartRequest"]
ADMISSION_SCHEMA = COMPONENTS["Admission"]
ADMISSION_ANSWER_SCHEMA = COMPONENTS["AdmissionAnswer"]
SESSION_SCHEMA = COMPONENTS["Session"]
LOAD_REPORT_SCHEMA = COMPONENTS["Load"]
