"""gunicorn entry point: `load_balancer.wsgi:app`."""

from load_balancer.app import create_app
from load_balancer.config import BalancerConfig

app = create_app(BalancerConfig.from_env())
