"""Datadog's test agent (``ddapm-test-agent``) on loopback, in a virtual environment of its
own under the repository's ``.cache/`` (its protobuf pins clash with the OTLP exporter's),
created on first use."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import venv
from pathlib import Path
from typing import Any

from rhythm_core.testing.conformance import ReceivedSpan
from rhythm_core.testing.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parents[3]
HOME = ROOT / ".cache" / "ddapm-test-agent"


def executable() -> Path:
    """The test agent's command, installing it into its own environment if needed."""
    command = HOME / "bin" / "ddapm-test-agent"
    HOME.parent.mkdir(parents=True, exist_ok=True)
    with open(HOME.parent / "ddapm-test-agent.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not command.exists():
            print("installing ddapm-test-agent into", HOME, file=sys.stderr)
            venv.create(HOME, with_pip=True, clear=True)
            subprocess.run([str(HOME / "bin" / "python"), "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", "ddapm-test-agent"], check=True)
    return command


class TestAgent:
    """One test agent on free loopback ports; every port it opens is given explicitly."""

    __test__ = False  # not a pytest test class

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "test-agent.log"
        self.process = subprocess.Popen(
            [str(executable()), f"--port={self.port}", "--host=127.0.0.1",
             f"--otlp-http-port={free_port()}", f"--otlp-grpc-port={free_port()}",
             f"--web-ui-port={free_port()}"],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.get("/info")
                break
            except (OSError, urllib.error.URLError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the test agent did not start:\n"
                                       f"{self.log.read_text()[-3000:]}") from None
                time.sleep(0.1)

    def get(self, path: str) -> Any:
        """The answer's JSON, or its text when it is not JSON."""
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:
            body = answer.read().decode()
            if answer.headers.get_content_type() == "application/json":
                return json.loads(body)
        return body

    def traces(self) -> list[list[dict[str, Any]]]:
        """Every trace chunk the agent received since the last :meth:`clear`."""
        return self.get("/test/traces") or []

    def spans(self) -> list[dict[str, Any]]:
        """Every span received, each with its chunk's ``_dd.p.tid``: Datadog sends the upper
        half of a 128-bit trace id on one span of each chunk only."""
        out = []
        for chunk in self.traces():
            tids = {s["meta"]["_dd.p.tid"] for s in chunk if "_dd.p.tid" in s.get("meta", {})}
            assert len(tids) <= 1, f"one chunk, several trace ids: {tids}"
            for span in chunk:
                meta = span.setdefault("meta", {})
                if tids:
                    meta.setdefault("_dd.p.tid", next(iter(tids)))
                out.append(span)
        return out

    def check_failures(self) -> str:
        """The agent's own trace checks: what failed, or "" when all passed."""
        try:
            self.get("/test/trace_check/failures")
        except urllib.error.HTTPError as failed:
            return failed.read().decode(errors="replace")
        return ""

    def clear(self) -> None:
        self.get("/test/session/clear")

    def stop(self) -> None:
        stop_process(self.process)


def trace_id_of(span: dict[str, Any]) -> str:
    """The 128-bit trace id, rebuilt: the upper half travels as the ``_dd.p.tid`` tag."""
    upper = span.get("meta", {}).get("_dd.p.tid", "0" * 16)
    return f"{upper}{span['trace_id']:016x}"


def received_span(span: dict[str, Any]) -> ReceivedSpan:
    """A span of the agent's payload in the core's terms."""
    start = int(span["start"])
    return ReceivedSpan(
        span["name"],
        trace_id_of(span),
        f"{span['span_id']:016x}",
        f"{span['parent_id']:016x}" if span.get("parent_id") else None,
        start,
        start + int(span["duration"]),
        bool(span.get("error")),
        {**span.get("meta", {}), **span.get("metrics", {})},
    )
