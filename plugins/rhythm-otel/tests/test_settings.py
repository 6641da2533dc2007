"""Bad settings stop the start, naming the key; good ones come from the block, then rhythm's
variables, then OpenTelemetry's."""

from __future__ import annotations

import pytest
from rhythm_otel.settings import resolve

from rhythm_core import ConfigError, testing
from rhythm_core.testing import resolve_config


@pytest.mark.parametrize(("options", "named"), [
    ({"protocl": "grpc"}, "observability.options.otel.protocl"),
    ({"protocol": "thrift"}, "observability.options.otel.protocol"),
    ({"prometheus_port": "ninety"}, "observability.options.otel.prometheus_port"),
    ({"max_queue_size": 0}, "observability.options.otel.max_queue_size"),
])
def test_a_bad_setting_stops_the_start_naming_it(options: dict[str, object],
                                                 named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):  # at start
        testing.from_block({"provider": "otel", "traces": {"enabled": True},
                            "options": {"otel": options}}).start()


def test_precedence_block_then_rhythm_then_otel_variables() -> None:
    config = resolve_config({"provider": "otel", "traces": {"enabled": True}}, {})
    env = {"RHYTHM_OTEL_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
           "OTEL_BSP_MAX_QUEUE_SIZE": "100"}
    settings = resolve(config, env)
    assert settings.protocol == "http/protobuf" and settings.max_queue_size == 100
    block = resolve_config({"provider": "otel", "options": {"otel": {"protocol": "grpc"}}}, {})
    assert resolve(block, env).protocol == "grpc"
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        resolve(config, {"OTEL_EXPORTER_OTLP_PROTOCOL": "json"})
