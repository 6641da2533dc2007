"""Bad settings stop the start, naming the key; good ones come from the block, then rhythm's
variables, then Datadog's."""

from __future__ import annotations

import pytest
from rhythm_datadog.settings import resolve

from rhythm_core import ConfigError, testing
from rhythm_core.testing import resolve_config


@pytest.mark.parametrize(("options", "named"), [
    ({"agent": "http://x:8126"}, "observability.options.datadog.agent"),
    ({"agent_url": "localhost:8126"}, "observability.options.datadog.agent_url"),
    ({"statsd_port": 70000}, "observability.options.datadog.statsd_port"),
    ({"span_type": ""}, "observability.options.datadog.span_type"),
])
def test_a_bad_setting_stops_the_start_naming_it(options: dict[str, object],
                                                 named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):  # at start
        testing.from_block({"provider": "datadog", "traces": {"enabled": True},
                            "options": {"datadog": options}}).start()


def test_precedence_block_then_rhythm_then_datadog_variables() -> None:
    env = {"DD_DOGSTATSD_PORT": "9125", "DD_AGENT_HOST": "agent", "DD_SERVICE": "dd-svc"}
    plain = resolve(resolve_config({"provider": "datadog"}, {}), env)
    assert (plain.statsd_host, plain.statsd_port, plain.service) == ("agent", 9125, "dd-svc")
    assert plain.agent_url is None  # left to ddtrace's own variables
    given = resolve(resolve_config({"provider": "datadog", "service_name": "billing",
                                    "metrics": {"endpoint": "127.0.0.1:8200"},
                                    "traces": {"endpoint": "http://127.0.0.1:9126"}}, {}), env)
    assert (given.statsd_host, given.statsd_port) == ("127.0.0.1", 8200)
    assert (given.service, given.agent_url) == ("billing", "http://127.0.0.1:9126")
    with pytest.raises(ConfigError, match="DD_DOGSTATSD_PORT"):
        resolve(resolve_config({"provider": "datadog"}, {}), {"DD_DOGSTATSD_PORT": "x"})


def test_metrics_alone_do_not_load_ddtrace() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from rhythm_core import testing\n"
        "obs = testing.from_block({'provider': 'datadog', 'metrics': {'enabled': True,\n"
        "    'endpoint': '127.0.0.1:9'}}).start()\n"
        "print('ddtrace' in sys.modules, 'datadog' in sys.modules)\n"
        "obs.shutdown(1.0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.split() == ["False", "True"], done.stdout + done.stderr
