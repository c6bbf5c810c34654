"""gunicorn entry point: `substation_service.wsgi:app`."""

from substation_service.app import create_app, create_hosting_app
from substation_service.config import SubstationConfig

config = SubstationConfig.from_env()
app = create_app(config) if config.count == 1 else create_hosting_app(config)
