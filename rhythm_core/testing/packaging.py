"""What a user gets from ``pip install "rhythm-core[<extra>]"``: wheels built from a checkout
into a directory, installed into a fresh virtual environment from there, and a worker in that
environment that loads the provider by name and runs a task."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path
from typing import Any

APP = """
import importlib, os, sys
import rhythm_core
from rhythm_core import Worker, task

provider = sys.argv[1]
plugin_module = importlib.import_module(sys.argv[2])

@task(queue="packaged")
async def hello(name: str) -> str:
    return f"hello {name}"

url = os.environ["RHYTHM_DATABASE_URL"]
rhythm_core.configure(url)
execution_id = hello.queue("wheel")
worker = Worker("packaged", database_url=url, observability={
    "provider": provider,  # by name, through the rhythm.observability entry point
    "traces": {"enabled": True, "sample_rate": 1.0, "endpoint": sys.argv[3]},
})
thread = worker.start_in_thread()
assert rhythm_core.wait(execution_id, timeout=60) == "hello wheel"
loaded = worker._obs.manager.is_registered(plugin_module.plugin)  # the installed plugin
worker.stop()
thread.join(30)
print("loaded:", loaded, plugin_module.__file__)
print("trace:", rhythm_core.get_execution(execution_id).trace_id)
"""


def run(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done: subprocess.CompletedProcess[str] = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, **kwargs
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return done


def install_and_run(
    root: Path,
    plugin: str,
    extra: str,
    module: str,
    endpoint: str,
    database_url: str,
    workdir: Path,
    env: dict[str, str] | None = None,
) -> str:
    """Build wheels of ``root`` and ``root/plugins/<plugin>``, install ``rhythm-core[extra]``
    from them into a new venv, check ``rhythm plugins`` lists ``extra``, run a worker with the
    provider sending to ``endpoint``; returns the trace id of the task it ran."""
    wheels = workdir / "wheels"
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "-w",
        wheels,
        root,
        root / "plugins" / plugin,
    )
    names = sorted(p.name.split("-")[0] for p in wheels.glob("*.whl"))
    assert names == ["rhythm_core", plugin.replace("-", "_")], names

    env_dir = workdir / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--find-links",
        wheels,
        f"rhythm-core[{extra}]",
    )
    listed = run(env_dir / "bin" / "rhythm", "plugins").stdout
    assert extra in listed, listed

    app = workdir / "app.py"
    app.write_text(textwrap.dedent(APP))
    environment = {**os.environ, "RHYTHM_DATABASE_URL": database_url, **(env or {})}
    environment.pop("PYTHONPATH", None)
    out = run(
        python, app, extra, module, endpoint, cwd=workdir, env=environment, timeout=180
    ).stdout
    assert "loaded: True" in out, out
    assert str(env_dir) in out.split("loaded:")[1], out  # the installed copy, not a checkout
    return out.split("trace:")[1].split()[0]
