"""`GET /grid/chargers` on the balancer: the OCPP service's chargers passed on for the live page, with a
deadline, and a problem when there is no OCPP service or it does not answer, each as the document says."""

from __future__ import annotations

import pytest
from flask import Flask

from grid_common.settings import ConfigError
from load_balancer.app import create_app as create_balancer
from load_balancer.config import BalancerConfig
from load_balancer.ocpp_client import OcppClient
from tests.app.test_api_contract import answer
from tests.fakes import WsgiTransport
from tests.in_process import substation_url

OCPP_URL = "http://ocpp.test:9000"
# Two chargers as the OCPP service lists them (ocpp_service/csms.py, describe()): one in a transaction.
CHARGERS = [
    {"charger_id": "a-cp1", "substation": "a", "connected": True, "protocol": "ocpp1.6", "phases": 3,
     "max_current_a": 32.0, "transaction_id": "17", "session_id": "a.0123456789abcdef", "state": "charging",
     "limit_kw": 11.0, "limit_a": 15.9, "default_a": 6.0, "measured_kw": 10.8, "fleet": False},
    {"charger_id": "a-cp2", "substation": "a", "connected": False, "protocol": None, "phases": 3,
     "max_current_a": 32.0, "transaction_id": None, "session_id": None, "state": None, "limit_kw": None,
     "limit_a": None, "default_a": None, "measured_kw": None, "fleet": False},
]  # fmt: skip


def fake_ocpp() -> Flask:
    app = Flask("ocpp")
    app.add_url_rule("/chargers", "chargers", lambda: {"chargers": CHARGERS})
    return app


def balancer(transport: WsgiTransport, ocpp_url: str = OCPP_URL) -> Flask:
    config = BalancerConfig(substations=(("a", substation_url("a")),), start_poller=False, ocpp_url=ocpp_url)
    ocpp = OcppClient(ocpp_url, connect_timeout_s=0.5, transport=transport) if ocpp_url else None
    return create_balancer(config, ocpp=ocpp)


def test_the_ocpp_services_chargers_are_passed_on():
    transport = WsgiTransport({OCPP_URL: fake_ocpp()})
    app = balancer(transport)
    reply = answer(app, "GET", "/grid/chargers", 200)
    assert reply.json() == {"chargers": CHARGERS}
    assert [(method, url) for method, url, _ in transport.sent] == [("GET", f"{OCPP_URL}/chargers")]


def test_without_ocpp_url_there_are_no_chargers_to_show():
    app = balancer(WsgiTransport(), ocpp_url="")
    reply = answer(app, "GET", "/grid/chargers", 404)
    assert "OCPP_URL" in reply.json()["detail"]


def test_an_ocpp_service_that_is_down_or_slow_is_a_problem_not_a_crash():
    transport = WsgiTransport({OCPP_URL: fake_ocpp()})
    app = balancer(transport)
    transport.slow.add(OCPP_URL)
    assert "OCPP service" in answer(app, "GET", "/grid/chargers", 504).json()["detail"]
    transport.slow.clear()
    answer(balancer(WsgiTransport()), "GET", "/grid/chargers", 502)  # nothing listens there


def test_the_default_client_asks_the_configured_url_within_its_deadline():
    config = BalancerConfig.from_env({"SUBSTATIONS": "a=http://127.0.0.1:5001", "OCPP_URL": "http://ocpp:9000/"})
    assert config.ocpp_url == "http://ocpp:9000"
    client = create_balancer(BalancerConfig(**{**config.__dict__, "start_poller": False})).extensions["balancer"].ocpp
    assert isinstance(client, OcppClient) and client.base_url == "http://ocpp:9000"
    assert client.http.read_timeout <= 2.0, "the page asks every second: an answer later than 2 s is not waited for"


@pytest.mark.parametrize(
    "url",
    ["ocpp:9000", "ftp://ocpp:9000", "http://", "http://user:secret@ocpp:9000", "http://ocpp:9000/?x=1",
     "http://ocpp:99999", "http://ocpp:0"],
)  # fmt: skip
def test_an_ocpp_url_that_is_not_a_plain_http_url_is_refused_at_start(url):
    with pytest.raises(ConfigError) as refused:
        BalancerConfig.from_env({"SUBSTATIONS": "a=http://127.0.0.1:5001", "OCPP_URL": url})
    assert any(error.startswith("OCPP_URL must be") for error in refused.value.errors)
    assert "secret" not in str(refused.value), "the value is never printed: it may hold credentials"
