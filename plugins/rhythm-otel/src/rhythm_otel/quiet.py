"""Say once that the backend is unreachable, not once per retry.

The OpenTelemetry exporters log every retry and every failed export. While an endpoint is
down that is a line every few seconds for as long as it lasts; the plugin already counts what
is lost (``rhythm.otel.spans.dropped``). This filter lets each kind of exporter message about
*this pipeline's* endpoints through once; messages about other endpoints (the application's
own exporters) pass untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
)


def _netlocs(endpoint: str) -> set[str]:
    """The endpoint as the exporters print it: ``host:port`` (gRPC), and urllib3's
    ``host='host', port=port`` (http/protobuf), from a URL or a bare ``host:port``."""
    parts = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}")
    found = {parts.netloc}
    if parts.hostname and parts.port:
        found.add(f"host='{parts.hostname}', port={parts.port}")
    return found


class OncePerKind(logging.Filter):
    def __init__(self, endpoints: Iterable[str]) -> None:
        super().__init__()
        self.endpoints = {form for e in endpoints if e for form in _netlocs(e)}
        self._seen: set[tuple[str, object]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not any(endpoint in message for endpoint in self.endpoints):
            return True
        kind = (record.name, record.msg)  # the unformatted template: one line per kind
        if kind in self._seen:
            return False
        self._seen.add(kind)
        return True

    def install(self) -> OncePerKind:
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).addFilter(self)
        return self

    def remove(self) -> None:
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).removeFilter(self)
