"""A real Prometheus server for the tests: Debian's ``prometheus`` package, unpacked into the
repository's ``.cache/`` on first use (no root needed: ``apt-get download`` + ``dpkg-deb -x``).

``RHYTHM_PROMETHEUS_BIN`` may name a directory that already holds ``prometheus`` and
``promtool``; binaries on ``PATH`` are used before anything is downloaded.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from rhythm_core.testing.processes import free_port, stop_process

from .collector import _listening

ROOT = Path(__file__).resolve().parents[3]
CACHE = ROOT / ".cache" / "prometheus"


def binaries() -> Path:
    """The directory holding ``prometheus`` and ``promtool``, installing them if needed."""
    given = os.environ.get("RHYTHM_PROMETHEUS_BIN")
    if given:
        return Path(given)
    found = shutil.which("prometheus")
    if found and shutil.which("promtool"):
        return Path(found).parent
    bin_dir = CACHE / "usr" / "bin"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE.parent / "prometheus.lock", "w") as lock:  # one installer at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (bin_dir / "prometheus").exists():
            _install(CACHE)
    return bin_dir


def _install(into: Path) -> None:
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise RuntimeError(
            "the Prometheus tests need Debian's prometheus package: no apt-get/dpkg-deb here; "
            "set RHYTHM_PROMETHEUS_BIN to a directory holding prometheus and promtool"
        )
    print("installing Prometheus (Debian package prometheus) into", into, file=sys.stderr)
    with tempfile.TemporaryDirectory() as scratch:
        fetched = subprocess.run(["apt-get", "download", "prometheus"], cwd=scratch,
                                 capture_output=True, text=True)
        debs = list(Path(scratch).glob("prometheus_*.deb"))
        if not debs:
            raise RuntimeError(f"apt-get download prometheus failed:\n{fetched.stderr}")
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(into)], check=True)


class Prometheus:
    """A Prometheus server on a free loopback port, scraping ``targets`` every second and
    evaluating ``rule_files``."""

    def __init__(self, workdir: Path, targets: list[str], rule_files: list[Path]) -> None:
        self.bin = binaries()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "prometheus.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [{"job_name": "rhythm", "static_configs": [{"targets": targets}]}],
        }))
        self.log = workdir / "prometheus.log"
        self.process = subprocess.Popen(
            [str(self.bin / "prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prometheus did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return body["data"]

    def stop(self) -> None:
        stop_process(self.process)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binaries() / "promtool"), *args], capture_output=True, text=True)


if __name__ == "__main__":  # the set-up step: python -m tests.prometheus
    print(binaries())
