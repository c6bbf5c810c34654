"""gunicorn entry point: `charge_request_service.wsgi:app`."""

from charge_request_service.app import create_app
from charge_request_service.config import GatewayConfig

app = create_app(GatewayConfig.from_env())
