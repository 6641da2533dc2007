"""Bad settings stop the start, naming the key; good ones come from the block, then rhythm's
variables, then AWS's own."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from rhythm_xray.settings import DEFAULT_EMF, STDOUT, resolve

from rhythm_core import ConfigError, testing
from rhythm_core.testing import resolve_config


@pytest.mark.parametrize(("block", "named"), [
    ({"options": {"xray": {"daemon": "x:2000"}}}, "observability.options.xray.daemon"),
    ({"options": {"xray": {"daemon_address": "no-port"}}},
     "observability.options.xray.daemon_address"),
    ({"options": {"xray": {"daemon_address": "127.0.0.1:99999"}}},
     "observability.options.xray.daemon_address"),
    ({"traces": {"enabled": True, "endpoint": "http://127.0.0.1:2000/x"}},
     "RHYTHM_TRACING_ENDPOINT"),
    ({"options": {"xray": {"emf_endpoint": "http://127.0.0.1:25888"}}},
     "observability.options.xray.emf_endpoint"),
    ({"metrics": {"enabled": True, "endpoint": "tcp://agent"}}, "RHYTHM_METRICS_ENDPOINT"),
    ({"options": {"xray": {"namespace": "no spaces"}}}, "observability.options.xray.namespace"),
    ({"options": {"xray": {"log_group": " "}}}, "observability.options.xray.log_group"),
])
def test_a_bad_setting_stops_the_start_naming_it(block: dict[str, object], named: str) -> None:
    block = {"provider": "xray", "traces": {"enabled": True}, **block}
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):  # at start
        testing.from_block(block).start()


def test_precedence_block_then_rhythm_then_aws_variables() -> None:
    env = {"AWS_XRAY_DAEMON_ADDRESS": "tcp:10.0.0.1:3000 udp:10.0.0.2:3001",
           "AWS_XRAY_TRACING_NAME": "orders", "AWS_EMF_AGENT_ENDPOINT": "udp://10.0.0.3:25888",
           "AWS_EMF_NAMESPACE": "Orders", "AWS_EMF_LOG_GROUP_NAME": "orders-metrics"}
    plain = resolve(resolve_config({"provider": "xray"}, {}), env)
    assert plain.daemon == ("10.0.0.2", 3001)  # segments travel over UDP
    assert (plain.service, plain.emf_endpoint) == ("orders", "udp://10.0.0.3:25888")
    assert (plain.namespace, plain.log_group) == ("Orders", "orders-metrics")
    from_rhythm = resolve(resolve_config(
        {"provider": "xray", "service_name": "billing",
         "traces": {"endpoint": "127.0.0.1:2100"},
         "metrics": {"endpoint": "tcp://127.0.0.1:25900"}}, {}), env)
    assert from_rhythm.daemon == ("127.0.0.1", 2100)
    assert (from_rhythm.service, from_rhythm.emf_endpoint) == ("billing", "tcp://127.0.0.1:25900")
    from_block = resolve(resolve_config(
        {"provider": "xray", "traces": {"endpoint": "127.0.0.1:2100"},
         "options": {"xray": {"daemon_address": "udp://127.0.0.1:2200",
                              "emf_endpoint": "stdout", "namespace": "Billing/Jobs"}}}, {}), env)
    assert from_block.daemon == ("127.0.0.1", 2200)
    assert (from_block.emf_endpoint, from_block.namespace) == (STDOUT, "Billing/Jobs")
    defaults = resolve(resolve_config({"provider": "xray"}, {}), {})
    assert defaults.daemon == ("127.0.0.1", 2000)
    assert (defaults.emf_endpoint, defaults.service, defaults.log_group) == (
        DEFAULT_EMF, "rhythm", "rhythm-metrics")
    local = resolve(resolve_config({"provider": "xray"}, {}), {"AWS_EMF_ENVIRONMENT": "Local"})
    assert local.emf_endpoint == STDOUT
    with pytest.raises(ConfigError, match="AWS_XRAY_DAEMON_ADDRESS"):
        resolve(resolve_config({"provider": "xray"}, {}), {"AWS_XRAY_DAEMON_ADDRESS": "x"})


def _python(code: str) -> str:
    """``code``'s output, run in a fresh interpreter (imports and stdout of its own)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_metrics_alone_do_not_load_the_xray_sdk() -> None:
    code = (
        "import sys\n"
        "from rhythm_core import testing\n"
        "obs = testing.from_block({'provider': 'xray', 'metrics': {'enabled': True,\n"
        "    'endpoint': 'udp://127.0.0.1:9'}}).start()\n"
        "print('aws_xray_sdk' in sys.modules, 'aws_embedded_metrics' in sys.modules)\n"
        "obs.shutdown(1.0)\n"
    )
    assert _python(code).split() == ["False", "True"]


def test_emf_to_stdout() -> None:
    code = (
        "import json\n"
        "from rhythm_core import testing\n"
        "from rhythm_core.observability import COUNTER, MetricPoint\n"
        "obs = testing.from_block({'provider': 'xray', 'metrics': {'enabled': True},\n"
        "    'options': {'xray': {'emf_endpoint': 'stdout'}}}).start()\n"
        "obs.metric(MetricPoint('rhythm.executions.created', COUNTER, 3, '{execution}',\n"
        "    {'queue': 'q'}, 0))\n"
        "obs.shutdown(5.0)\n"
    )
    (line,) = [json.loads(x) for x in _python(code).splitlines() if x.startswith("{")]
    assert line["rhythm.executions.created"] == 3 and line["queue"] == "q"
    assert line["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "rhythm.executions.created", "Unit": "Count"}]
