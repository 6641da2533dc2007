"""What a user gets from ``pip install "rhythm-core[otel]"``: wheels built from this checkout,
installed into a fresh virtual environment, give a worker that loads ``otel`` by name."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

from .otlp_sink import OtlpSink
from .prometheus import ROOT

APP = '''
import os, sys
import rhythm_core
import rhythm_otel
from rhythm_core import Worker, task

@task(queue="packaged")
async def hello(name: str) -> str:
    return f"hello {name}"

url = os.environ["RHYTHM_DATABASE_URL"]
rhythm_core.configure(url)
execution_id = hello.queue("wheel")
worker = Worker("packaged", database_url=url, observability={
    "provider": "otel",  # by name, through the rhythm.observability entry point
    "traces": {"enabled": True, "sample_rate": 1.0, "endpoint": sys.argv[1]},
})
thread = worker.start_in_thread()
assert rhythm_core.wait(execution_id, timeout=60) == "hello wheel"
loaded = rhythm_otel.plugin.pipeline is not None  # configured by the worker's start
worker.stop()
thread.join(30)
print("loaded:", loaded, rhythm_otel.__file__)
print("trace:", rhythm_core.get_execution(execution_id).trace_id)
'''


def _run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return done


def test_wheels_install_into_a_fresh_environment(
    tmp_path: Path, sink: OtlpSink, rhythm_database_url: str
) -> None:
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels,
         ROOT, ROOT / "plugins" / "rhythm-otel")
    assert sorted(p.name.split("-")[0] for p in wheels.glob("*.whl")) == [
        "rhythm_core", "rhythm_otel"]

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--find-links", wheels, "rhythm-core[otel]")

    listed = _run(env_dir / "bin" / "rhythm", "plugins").stdout
    assert "otel" in listed, listed

    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(APP))
    environment = {**os.environ, "RHYTHM_DATABASE_URL": rhythm_database_url}
    environment.pop("PYTHONPATH", None)
    out = _run(python, app, sink.endpoint, cwd=tmp_path, env=environment, timeout=120).stdout
    assert "loaded: True" in out, out
    assert str(env_dir) in out.split("loaded:")[1], out  # the installed copy, not the checkout
    trace_id = out.split("trace:")[1].split()[0]
    sink.wait_for(lambda: sink.spans_of(trace_id), message="the packaged worker sent no span")
