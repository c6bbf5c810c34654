"""gunicorn entry point: `substation_service.wsgi:app`."""

from substation_service.app import create_app
from substation_service.config import SubstationConfig

app = create_app(SubstationConfig.from_env())
