import pytest

from charge_request_service.config import GatewayConfig
from grid_common.settings import ConfigError
from load_balancer.config import BalancerConfig
from substation_service.config import SubstationConfig


def test_substation_config_reads_and_defaults():
    config = SubstationConfig.from_env({"SUBSTATION_NAME": "s1", "CAPACITY_KW": "300"})
    assert config.capacity_kw == 300 and config.time_scale == 360 and config.background_peak_fraction == 0.3


def test_substation_config_lists_every_mistake():
    with pytest.raises(ConfigError) as caught:
        SubstationConfig.from_env({"CAPACITY_KW": "-5", "TIME_SCALE": "fast", "WEB_CONCURRENCY": "4"})
    message = str(caught.value)
    for expected in ("SUBSTATION_NAME is required", "CAPACITY_KW must be greater than 0", "TIME_SCALE must be a number",
                     "WEB_CONCURRENCY must be 1"):  # fmt: skip
        assert expected in message


def test_balancer_config_parses_substations():
    config = BalancerConfig.from_env({"SUBSTATIONS": "a=http://h:1, b=http://h:2/", "STRATEGY": "round_robin"})
    assert config.substations == (("a", "http://h:1"), ("b", "http://h:2"))
    assert config.strategy == "round_robin"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "SUBSTATIONS is required"),
        ({"SUBSTATIONS": "a=ftp://h"}, "must be name=http://host:port"),
        ({"SUBSTATIONS": "a=http://h:1,a=http://h:2"}, "names 'a' twice"),
        ({"SUBSTATIONS": "a=http://h:1", "STRATEGY": "fastest"}, "STRATEGY must be one of"),
        ({"SUBSTATIONS": "a=http://h:1", "POLL_INTERVAL_S": "0"}, "POLL_INTERVAL_S must be at least"),
    ],
)
def test_balancer_config_errors(env, expected):
    with pytest.raises(ConfigError, match=expected):
        BalancerConfig.from_env(env)


def test_gateway_config():
    assert GatewayConfig.from_env({"BALANCER_URL": "http://b:7000/"}).balancer_urls == ("http://b:7000",)
    replicas = GatewayConfig.from_env({"BALANCER_URL": "http://b1:7000, http://b2:7000/"})
    assert replicas.balancer_urls == ("http://b1:7000", "http://b2:7000")
    with pytest.raises(ConfigError, match="separated by commas"):
        GatewayConfig.from_env({"BALANCER_URL": "http://b1:7000,b2:7000"})
    with pytest.raises(ConfigError, match="BALANCER_URL must be http"):
        GatewayConfig.from_env({"BALANCER_URL": "b:7000"})


def test_one_process_may_simulate_numbered_substations():
    config = SubstationConfig.from_env({"SUBSTATION_NAME": "s", "SUBSTATION_COUNT": "3", "CAPACITY_KW": "80"})
    hosted = config.hosted()
    assert [sub.name for sub in hosted] == ["s1", "s2", "s3"]
    assert {sub.capacity_kw for sub in hosted} == {80} and {sub.count for sub in hosted} == {1}
    assert SubstationConfig.from_env({"SUBSTATION_NAME": "s"}).hosted() == [SubstationConfig(name="s")]
    with pytest.raises(ConfigError, match="SUBSTATION_COUNT must be at most 1000"):
        SubstationConfig.from_env({"SUBSTATION_NAME": "s", "SUBSTATION_COUNT": "1001"})
    with pytest.raises(ConfigError, match="too long to number"):
        SubstationConfig.from_env({"SUBSTATION_NAME": "x" * 62, "SUBSTATION_COUNT": "12"})


def test_gateway_needs_a_shared_idempotency_file_with_several_workers():
    config = GatewayConfig.from_env({"BALANCER_URL": "http://b:7000", "IDEMPOTENCY_TTL_S": "3600"})
    assert config.idempotency_db == ":memory:" and config.idempotency_ttl_s == 3600 and config.connect_retries == 2
    with pytest.raises(ConfigError, match="IDEMPOTENCY_DB must be a file path with WEB_CONCURRENCY=4"):
        GatewayConfig.from_env({"BALANCER_URL": "http://b:7000", "WEB_CONCURRENCY": "4"})
    shared = GatewayConfig.from_env(
        {"BALANCER_URL": "http://b:7000", "WEB_CONCURRENCY": "4", "IDEMPOTENCY_DB": "/var/lib/gateway/keys.sqlite3"}
    )
    assert shared.idempotency_db == "/var/lib/gateway/keys.sqlite3"


def test_topology_token_is_checked_and_never_echoed():
    config = BalancerConfig.from_env({"SUBSTATIONS": "a=http://h:1", "TOPOLOGY_TOKEN": "s3cret-s3cret-s3cret"})
    assert config.topology_token == "s3cret-s3cret-s3cret" and "s3cret" not in repr(config)
    with pytest.raises(ConfigError) as caught:
        BalancerConfig.from_env({"SUBSTATIONS": "a=http://h:1", "TOPOLOGY_TOKEN": "short-secret"})
    assert "at least 16" in str(caught.value) and "short-secret" not in str(caught.value)
    with pytest.raises(ConfigError, match="needs WEB_CONCURRENCY=1"):
        BalancerConfig.from_env(
            {"SUBSTATIONS": "a=http://h:1", "TOPOLOGY_TOKEN": "s3cret-s3cret-s3cret", "WEB_CONCURRENCY": "2"}
        )


def test_a_registration_names_each_mistake():
    from grid_common.protocol import InvalidRequest
    from load_balancer.config import parse_registration
    from load_balancer.substation_urls import SubstationUrls, networks_around

    urls = SubstationUrls(networks_around(["10.0.3.7"]), resolve=lambda host: ["10.0.3.9"])
    assert parse_registration({"name": "s4", "url": "http://s4:5000/"}, urls) == ("s4", "http://s4:5000")
    with pytest.raises(InvalidRequest) as caught:
        parse_registration({"name": "bad name", "url": "ftp://x", "extra": 1}, urls)
    assert {e["field"] for e in caught.value.errors} == {"name", "url", "extra"}
    with pytest.raises(InvalidRequest):
        parse_registration(["s4"], urls)


def test_configured_substation_urls_with_credentials_are_refused_without_echoing_them():
    with pytest.raises(ConfigError) as caught:
        BalancerConfig.from_env({"SUBSTATIONS": "a=http://admin:hunter2@h:5000"})
    assert "hunter2" not in str(caught.value) and "credentials" in str(caught.value)
    with pytest.raises(ConfigError):
        BalancerConfig.from_env({"SUBSTATIONS": "a=http://h:5000", "SUBSTATION_NETWORKS": "not-a-network"})
