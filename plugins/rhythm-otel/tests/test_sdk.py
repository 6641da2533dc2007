"""The SDK internals the plugin relies on are those of the installed SDK; when a release
changes them, this fails naming what is gone (and so does a worker at start)."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from rhythm_otel import sdk

from rhythm_core.observability import ConfigError


def test_the_installed_sdk_has_every_internal_the_plugin_uses() -> None:
    assert sdk.problems() == [], (
        f"opentelemetry-sdk changed: {sdk.problems()}; supported range {sdk.SUPPORTED}")


def test_a_missing_internal_fails_at_start_naming_it(monkeypatch) -> None:
    # as a release that renamed it would: gone from every class that defines it
    for owner in OTLPSpanExporter.__mro__:
        if "_count_data" in vars(owner):
            monkeypatch.delattr(owner, "_count_data")
    with pytest.raises(ConfigError) as raised:
        sdk.check()
    message = str(raised.value)
    assert "OTLPSpanExporter._count_data" in message
    assert f"opentelemetry-sdk{sdk.SUPPORTED}" in message
