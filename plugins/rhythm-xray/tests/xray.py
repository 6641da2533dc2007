"""The tests' X-Ray: ``moto_server`` (moto's X-Ray API) on loopback, a daemon stand-in on a
UDP port that checks every segment document it receives and forwards it to that API, and a
reader that gets traces back with boto3's ``batch_get_traces``."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rhythm_core.testing.conformance import ReceivedSpan
from rhythm_core.testing.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parents[3]
HEADER = b'{"format":"json","version":1}\n'
MAX_DATAGRAM = 64 * 1024  # what the daemon reads; X-Ray's limit on a segment document
TRACE_ID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
ENTITY_ID = re.compile(r"^[0-9a-f]{16}$")
ANNOTATION_KEY = re.compile(r"^[A-Za-z0-9_]{1,500}$")
NAME_REFUSED = set("?;*()!$~^<>")
THIRTY_DAYS = 30 * 24 * 3600


def xray_id(trace_id: str) -> str:
    return f"1-{trace_id[:8]}-{trace_id[8:]}"


def core_id(xray_trace_id: str) -> str:
    return xray_trace_id[2:10] + xray_trace_id[11:]


class MotoServer:
    """``moto_server`` on a free loopback port, with a boto3 X-Ray client for it."""

    def __init__(self, workdir: Path) -> None:
        import boto3

        command = shutil.which("moto_server", path=str(Path(sys.executable).parent))
        assert command, "moto_server is not installed (pip install 'moto[server]')"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "moto.log"
        self.process = subprocess.Popen(
            [command, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )
        self.client = boto3.client(
            "xray", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client.get_trace_summaries(StartTime=0, EndTime=1)
                break
            except Exception as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.log.read_text()
                    raise RuntimeError(f"moto_server did not start:\n{log}") from exc
                time.sleep(0.1)

    def documents(self, trace_id: str) -> list[dict[str, Any]]:
        """The documents X-Ray holds for a trace (``trace_id`` as the core writes it)."""
        answer = self.client.batch_get_traces(TraceIds=[xray_id(trace_id)])
        return [json.loads(segment["Document"])
                for trace in answer["Traces"] for segment in trace["Segments"]]

    def stop(self) -> None:
        stop_process(self.process)


def entities(document: dict[str, Any], parent: str | None = None) -> Iterator[dict[str, Any]]:
    """A document and the subsegments nested in it, each with its parent's id filled in."""
    yield {**document, "parent_id": document.get("parent_id") or parent}
    for child in document.get("subsegments", ()):
        yield from entities(child, document["id"])


def received_span(entity: dict[str, Any], trace_id: str) -> ReceivedSpan:
    """An entity in the core's terms: a segment's span name is in its ``rhythm_span``
    annotation (its name is the service's), a subsegment's is its name."""
    name = entity.get("annotations", {}).get("rhythm_span", entity["name"])
    return ReceivedSpan(
        name=name,
        trace_id=core_id(entity.get("trace_id") or xray_id(trace_id)),
        span_id=entity["id"],
        parent_span_id=entity.get("parent_id"),
        start_ns=round(entity["start_time"] * 1e9),
        end_ns=round(entity["end_time"] * 1e9),
        error=bool(entity.get("fault") or entity.get("error")),
        attributes=entity.get("metadata", {}).get("rhythm", {}),
    )


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def problems_of(datagram: bytes) -> list[str]:
    """What is wrong with a daemon datagram: header, size, and each entity's fields."""
    if len(datagram) > MAX_DATAGRAM:
        return [f"a datagram of {len(datagram)} bytes"]
    if not datagram.startswith(HEADER):
        return [f"no daemon header: {datagram[:60]!r}"]
    try:
        # strict, as the daemon is: NaN and Infinity are not JSON
        document = json.loads(datagram[len(HEADER):], parse_constant=_refuse)
    except ValueError as exc:
        return [f"not JSON: {exc}"]
    found: list[str] = []
    check_entity(document, top=True, found=found)
    return found


def check_entity(entity: dict[str, Any], *, top: bool, found: list[str]) -> None:
    def bad(what: str) -> None:
        found.append(f"{entity.get('id')} {entity.get('name')!r}: {what}")

    name = entity.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= 200 or set(name) & NAME_REFUSED:
        bad("name")
    if not ENTITY_ID.match(str(entity.get("id", ""))):
        bad("id")
    start, end = entity.get("start_time"), entity.get("end_time")
    if not isinstance(start, float | int) or not isinstance(end, float | int) or end < start:
        bad(f"times {start} {end}")
    elif abs(time.time() - start) > 3600:
        bad(f"start_time {start} is not recent")
    if entity.get("in_progress"):
        bad("in progress")
    independent = entity.get("type") == "subsegment" and top
    if top:
        trace_id = str(entity.get("trace_id", ""))
        if not TRACE_ID.match(trace_id):
            bad(f"trace_id {trace_id!r}")
        elif not 0 <= time.time() - int(trace_id[2:10], 16) < THIRTY_DAYS:
            bad(f"trace_id {trace_id!r} is not from the last 30 days")
    if independent and not ENTITY_ID.match(str(entity.get("parent_id", ""))):
        bad("an independent subsegment without parent_id")
    if "parent_id" in entity and not ENTITY_ID.match(str(entity["parent_id"])):
        bad(f"parent_id {entity['parent_id']!r}")
    for key, value in entity.get("annotations", {}).items():
        if not ANNOTATION_KEY.match(key) or not isinstance(value, str | int | float | bool):
            bad(f"annotation {key}={value!r}")
    if entity.get("fault") or entity.get("error"):
        exceptions = entity.get("cause", {}).get("exceptions", [])
        if not exceptions or not all(e.get("id") and e.get("type") for e in exceptions):
            bad("a fault without a cause")
    for child in entity.get("subsegments", ()):
        check_entity(child, top=False, found=found)


class Daemon:
    """A stand-in for the X-Ray daemon: receives datagrams on a UDP port, checks each, and
    forwards the documents to moto's ``PutTraceSegments``."""

    def __init__(self, moto: MotoServer) -> None:
        self.moto = moto
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # room for a burst while this process's other threads hold the GIL
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.datagrams: list[bytes] = []
        self.problems: list[str] = []
        self.refused: list[Any] = []
        self._pending: list[str] = []
        self._lock = threading.Condition()
        self._closing = False
        self._threads = [threading.Thread(target=self._receive, daemon=True),
                         threading.Thread(target=self._forward, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _receive(self) -> None:
        while True:
            try:
                datagram = self.socket.recv(65_535)
            except OSError:
                return
            if not datagram:  # the wake-up sent by stop()
                return
            with self._lock:
                self.datagrams.append(datagram)
                self._pending.append(datagram.decode())
                self._lock.notify()

    def _forward(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    self._lock.wait()
                batch, self._pending = self._pending[:50], self._pending[50:]
                if not batch and self._closing:
                    return
            documents = []
            for datagram in batch:
                found = problems_of(datagram.encode())
                self.problems.extend(found)
                if not found:
                    documents.append(datagram.split("\n", 1)[1])
            if documents:
                answer = self.moto.client.put_trace_segments(TraceSegmentDocuments=documents)
                self.refused.extend(answer.get("UnprocessedTraceSegments", []))
            with self._lock:
                self._lock.notify_all()

    def settled(self) -> bool:
        with self._lock:
            return not self._pending

    def stop(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as wake:
            wake.sendto(b"", ("127.0.0.1", self.port))
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(10)
        self.socket.close()


class Reader:
    """What X-Ray holds, in the core's terms (for the conformance suite and the tests)."""

    def __init__(self, moto: MotoServer, emf: Any = None) -> None:
        self.moto, self.emf = moto, emf

    def spans(self, trace_id: str) -> list[ReceivedSpan]:
        return [received_span(e, trace_id) for d in self.moto.documents(trace_id)
                for e in entities(d)]

    def metrics(self) -> list[Any]:
        return self.emf.metrics() if self.emf is not None else []
