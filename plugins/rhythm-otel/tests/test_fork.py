"""Process safety: a worker process that forks (a pre-fork server, a process pool) gets a
fresh export pipeline in the child, and both processes' spans arrive."""

from __future__ import annotations

import subprocess
import sys

from .otlp_sink import OtlpSink

CODE = """
import os, sys, time
from rhythm_core.testing import Observability
from rhythm_core.testing import resolve_config as resolve
from rhythm_core.observability import Span
import rhythm_otel

obs = Observability(resolve({"provider": "otel", "traces": {"enabled": True,
        "sample_rate": 1.0, "endpoint": sys.argv[1]}}, {})).start()
def emit(name):
    now = time.time_ns()
    span = Span(name, "%032x" % (now << 32), "%016x" % (os.getpid() + 1), None, now,
                end_ns=now + 1000)
    obs.emit_spans([span])
    return span.trace_id
emit("before.fork")
parent_pipeline = rhythm_otel.plugin.pipeline
pid = os.fork()
if pid == 0:
    fresh = rhythm_otel.plugin.pipeline is not parent_pipeline
    emit("in.child")
    rhythm_otel.plugin.rhythm_observability_shutdown(10)
    os._exit(0 if fresh else 3)
_, status = os.waitpid(pid, 0)
emit("in.parent")
obs.shutdown(10)
print("child exit", os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_exports_through_its_own_pipeline(sink: OtlpSink) -> None:
    done = subprocess.run([sys.executable, "-c", CODE, sink.endpoint], capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.strip() == "child exit 0", done.stdout + done.stderr

    def names() -> set[str]:
        with sink.lock:
            return {span.name for _, span in sink.spans}

    sink.wait_for(lambda: {"before.fork", "in.child", "in.parent"} <= names(),
                  message=f"received {names()}")
