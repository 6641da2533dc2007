"""A stand-in for the CloudWatch agent's EMF listener: TCP on a free loopback port, one JSON
document a line, each checked against the Embedded Metric Format specification."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from rhythm_core.testing.conformance import ReceivedMetric

NAMESPACE = re.compile(r"^[a-zA-Z0-9._#:/-]{1,256}$")
UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Count", "Percent", "None"}


@dataclass
class Document:
    body: dict[str, Any]

    @property
    def directive(self) -> dict[str, Any]:
        return dict(self.body["_aws"]["CloudWatchMetrics"][0])

    @property
    def names(self) -> list[str]:
        return [m["Name"] for m in self.directive["Metrics"]]

    def dimension(self, key: str) -> Any:
        return self.body.get(key)

    def values(self, name: str) -> list[float]:
        value = self.body[name]
        return list(value) if isinstance(value, list) else [value]


def problems_of(body: Any) -> list[str]:
    """What is wrong with a document, by the EMF specification."""
    found: list[str] = []
    aws = body.get("_aws") if isinstance(body, dict) else None
    if not isinstance(aws, dict):
        return ["no _aws block"]
    stamp = aws.get("Timestamp")
    if not isinstance(stamp, int) or abs(time.time() * 1000 - stamp) > 3_600_000:
        found.append(f"Timestamp {stamp!r}")
    directives = aws.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*found, "no CloudWatchMetrics"]
    for directive in directives:
        if not NAMESPACE.match(str(directive.get("Namespace", ""))):
            found.append(f"Namespace {directive.get('Namespace')!r}")
        for dimension_set in directive.get("Dimensions", []):
            if not 1 <= len(dimension_set) <= 30:
                found.append(f"a dimension set of {len(dimension_set)}")
            for key in dimension_set:
                value = body.get(key)
                if not isinstance(value, str) or not value or not value.isascii():
                    found.append(f"dimension {key}={value!r}")
        metrics = directive.get("Metrics", [])
        if not 0 < len(metrics) <= 100:
            found.append(f"{len(metrics)} metrics in one document")
        for metric in metrics:
            name = metric.get("Name")
            if metric.get("Unit", "None") not in UNITS:
                found.append(f"{name}: unit {metric.get('Unit')!r}")
            value = body.get(name)
            values = value if isinstance(value, list) else [value]
            if not 0 < len(values) <= 100 or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in values
            ):
                found.append(f"{name}: values {value!r}")
    return found


class EmfListener:
    __test__ = False

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.documents: list[Document] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rb") as lines:
            for line in lines:
                try:
                    body = json.loads(line)
                except ValueError:
                    found = [f"not JSON: {line[:80]!r}"]
                else:
                    found = problems_of(body)
                with self._lock:
                    self.problems.extend(found)
                    if not found:
                        self.documents.append(Document(body))

    def received(self) -> list[Document]:
        with self._lock:
            return list(self.documents)

    def metrics(self) -> list[ReceivedMetric]:
        """Each metric with the kind the plugin wrote beside it (EMF itself has no kinds)."""
        return [ReceivedMetric(name, d.body["rhythm_metric_kinds"][name])
                for d in self.received() for name in d.names]

    def wait_for(self, names: set[str], timeout: float = 20) -> list[Document]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.received()
            if names <= {n for d in got for n in d.names} or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    def stop(self) -> None:
        self._closing = True
        self.server.close()
