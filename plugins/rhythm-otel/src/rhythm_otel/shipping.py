"""Finished core spans queued on the hot path, encoded and sent in batches by one thread.

The hot path appends the core's span object to a bounded deque and returns; encoding
(:mod:`.encoding`) and the network happen on the shipping thread. Spans that do not fit in the
queue, and batches the endpoint refuses, are counted and logged once.
"""

from __future__ import annotations

import gzip
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.util.re import parse_env_headers

from rhythm_core.observability import BatchQueue, Span, let_others_run

from .encoding import AttributeCache, export_request
from .sdk import GrpcPayloadExporter

log = logging.getLogger("rhythm_otel")
Send = Callable[["Encoded"], bool]
BATCH = 512


@dataclass(frozen=True, slots=True)
class Encoded:
    """One export request's bytes and how many spans it holds."""

    payload: bytes
    count: int

    def __len__(self) -> int:
        return self.count


def grpc_sender(endpoint: str | None) -> tuple[Send, Callable[[], None]]:
    exporter = GrpcPayloadExporter(endpoint=endpoint)

    def send(batch: Encoded) -> bool:
        return exporter.export(batch) is SpanExportResult.SUCCESS  # type: ignore[arg-type]

    return send, exporter.shutdown


def _env(name: str, env: Mapping[str, str]) -> str | None:
    """``OTEL_EXPORTER_OTLP_TRACES_<name>``, else ``OTEL_EXPORTER_OTLP_<name>``."""
    return env.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or env.get(f"OTEL_EXPORTER_OTLP_{name}")


def http_sender(
    endpoint: str, env: Mapping[str, str] | None = None
) -> tuple[Send, Callable[[], None]]:
    """OTLP/HTTP with protobuf bodies, honouring the standard headers, compression, timeout
    and certificate variables; retries what the spec calls retryable until the timeout."""
    import requests

    env = os.environ if env is None else env
    session = requests.Session()
    session.headers.update(parse_env_headers(_env("HEADERS", env) or "", liberal=True))
    session.headers["Content-Type"] = "application/x-protobuf"
    compress = (_env("COMPRESSION", env) or "").strip().lower() == "gzip"
    if compress:
        session.headers["Content-Encoding"] = "gzip"
    timeout = float(_env("TIMEOUT", env) or 10_000) / 1000
    verify: bool | str = _env("CERTIFICATE", env) or True

    def send(batch: Encoded) -> bool:
        body = gzip.compress(batch.payload) if compress else batch.payload
        deadline = time.monotonic() + timeout
        delay = 0.5
        while True:
            try:
                answer = session.post(endpoint, data=body, timeout=timeout, verify=verify)
                if answer.ok:
                    return True
                retry = answer.status_code in (429, 502, 503, 504)
                log.debug("rhythm-otel: %s answered %s", endpoint, answer.status_code)
            except requests.RequestException as exc:
                retry = True
                log.debug("rhythm-otel: %s: %s", endpoint, exc)
            if not retry or time.monotonic() + delay > deadline:
                return False
            time.sleep(delay)
            delay *= 2

    return send, session.close


class SpanShipper:
    """A bounded queue of finished spans and the thread that exports them."""

    def __init__(
        self,
        send: Send,
        close: Callable[[], None],
        resource: bytes,
        scope: bytes,
        *,
        endpoint: str,
        max_queue_size: int,
        schedule_delay_ms: int,
    ) -> None:
        self._send, self._close = send, close
        self._resource, self._scope = resource, scope
        self.endpoint = endpoint
        self.max_queue_size = max_queue_size
        self._cache = AttributeCache()
        self._lock = threading.Lock()
        self.dropped = 0  # spans not delivered: queue full, refused, or left at shutdown
        self._warned: set[str] = set()
        self._queue: BatchQueue[Span] = BatchQueue(
            self._export,
            name="rhythm-otel-spans",
            max_size=max_queue_size,
            batch=BATCH,
            interval=schedule_delay_ms / 1000,
            on_full=lambda _span: self._lose(1, "the export queue is full"),
        )

    @property
    def queued(self) -> int:
        """Spans waiting for export now."""
        return self._queue.queued

    @property
    def idle(self) -> bool:
        """Nothing queued and no batch being sent."""
        return self._queue.idle

    def add(self, span: Span) -> None:
        """Called on the hot path: append and return."""
        self._queue.put(span)

    def _export(self, batch: list[Span]) -> None:
        try:
            request = export_request(
                self._resource, self._scope, batch, self._cache, let_others_run
            )
            delivered = self._send(Encoded(request, len(batch)))
        except Exception as exc:  # an exporter that raises loses its batch like one that fails
            log.debug("rhythm-otel: export raised: %s", exc)
            delivered = False
        if not delivered:
            self._lose(len(batch), f"spans could not be sent to {self.endpoint}")

    def _lose(self, count: int, why: str) -> None:
        with self._lock:
            self.dropped += count
            warn = why not in self._warned
            self._warned.add(why)
        if warn:
            log.warning(
                "rhythm-otel: %s; spans are dropped (counted in the plugin's dropped_spans; "
                "this is logged once)",
                why,
            )

    def flush(self, timeout: float) -> bool:
        """Send what is queued now rather than at the next tick; True once all of it is sent
        (or lost), False if ``timeout`` seconds passed first."""
        return self._queue.flush(timeout)

    def shutdown(self, timeout: float) -> None:
        """Send what is queued within ``timeout`` seconds; what is left is counted lost."""
        left = len(self._queue.shutdown(timeout)) + self._queue.in_flight
        if left:
            self._lose(left, "spans were still queued or being sent when the worker stopped")
        self._close()
