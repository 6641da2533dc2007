"""Bad input gets a clear error that names it, and loses nothing."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import uuid

import pytest

import rhythm_core
from rhythm_core import ConfigError, ExecutionFailed, SerializationError, Worker, task, workflow

from .apps import basic
from .conftest import ROOT


def count(db) -> int:
    row = db.execute("SELECT count(*) FROM executions").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [
        ((object(), 1), {}, "cannot serialise argument 0 of tests.apps.basic.add of type object"),
        ((1,), {"b": {1, 2}}, "keyword argument 'b'"),
        ((math.nan, 1), {}, "argument 0"),
        (("a\x00b", 1), {}, "NUL character"),
    ],
    ids=["object", "set-kwarg", "nan", "nul"],
)
def test_unserialisable_arguments_fail_at_enqueue_and_write_nothing(
    db, args, kwargs, named
) -> None:
    with pytest.raises(SerializationError) as raised:
        basic.add.queue(*args, **kwargs)
    assert named in str(raised.value)
    assert count(db) == 0


def test_queue_many_writes_nothing_if_one_call_is_bad(db) -> None:
    with pytest.raises(SerializationError, match="argument 1"):
        basic.add.queue_many([(1, 2), (3, object())])
    assert count(db) == 0


@pytest.mark.parametrize(("call", "message"), [
    (lambda: basic.add.queue(1), "missing a required argument: 'b'"),
    (lambda: basic.add.queue(1, 2, 3), "too many positional arguments"),
    (lambda: basic.greet.queue("ada", colour="red"), "unexpected keyword argument 'colour'"),
])
def test_arguments_that_do_not_fit_the_function_fail_at_enqueue(db, call, message) -> None:
    with pytest.raises(TypeError) as raised:
        call()
    assert message in str(raised.value)
    assert "tests.apps.basic." in str(raised.value)  # names the function and its signature
    assert count(db) == 0


def test_queue_many_names_the_call_that_does_not_fit(db) -> None:
    with pytest.raises(TypeError, match=r"queue_many call 2: .*missing a required argument"):
        basic.add.queue_many([(1, 2), (3, 4), (5,)])
    assert count(db) == 0


@pytest.mark.parametrize(("args", "kwargs", "named"), [
    (((1, 2), 3), {}, "argument 0 of tests.apps.basic.add as it is: it holds a tuple"),
    ((1, [3, (4,)]), {}, "argument 1 of tests.apps.basic.add as it is: it holds a tuple"),
    ((1, {"a": {2: "b"}}), {}, "argument 1 of tests.apps.basic.add as it is: it holds a dict "
                               "key 2 of type int"),
    ((), {"a": 1, "b": {None: 1}}, "keyword argument 'b'"),
])
def test_values_json_would_change_are_refused_naming_the_argument(db, args, kwargs,
                                                                   named) -> None:
    with pytest.raises(SerializationError) as raised:
        basic.add.queue(*args, **kwargs)
    assert named in str(raised.value)
    assert count(db) == 0


def test_unknown_function_fails_that_execution_and_the_worker_goes_on(start_worker, db) -> None:
    bogus = str(uuid.uuid4())
    db.execute(
        "INSERT INTO executions (id, type, function_name, queue, max_retries) "
        "VALUES (%s, 'task', 'nowhere.missing_function', 'basic', 5)",
        (bogus,),
    )
    start_worker("basic")
    with pytest.raises(ExecutionFailed) as raised:
        rhythm_core.wait(bogus, timeout=10)
    assert raised.value.error_type == "UnknownFunction"
    assert "nowhere.missing_function" in raised.value.error_message
    assert rhythm_core.get_execution(bogus).attempt == 1  # not retried: a retry cannot help
    assert rhythm_core.wait(basic.add.queue(1, 1), timeout=10) == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://nobody:secret@127.0.0.1:{port}/nothing",
        "this is :: not a database url",
        "postgresql://postgres@127.0.0.1:5432/db?sslmode=bogus",
    ],
    ids=["unreachable", "malformed", "bad-option"],
)
@pytest.mark.parametrize("command", [["migrate"], ["status"], ["worker", "-m", "tests.apps.basic"]])
def test_bad_database_url_is_one_line_naming_it(url, command) -> None:
    env = {**os.environ, "RHYTHM_DATABASE_URL": url.format(port=_free_port())}
    done = subprocess.run(
        [sys.executable, "-m", "rhythm_core", *command],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("rhythm: error: cannot connect to RHYTHM_DATABASE_URL")
    assert "Traceback" not in done.stderr
    assert "secret" not in done.stderr  # passwords are masked


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": "8"}, "concurrency"),
        ({"poll_interval": -1}, "poll_interval"),
        ({"shutdown_timeout": "soon"}, "shutdown_timeout"),
        ({"heartbeat_interval": 5, "dead_after": 2}, "dead_after"),
        ({"poll_interval": math.inf}, "poll_interval"),
        ({"shutdown_timeout": math.nan}, "shutdown_timeout"),
        ({"dead_after": math.inf}, "dead_after"),
        ({"claim_batch": 0}, "claim_batch"),
    ],
)
def test_bad_worker_options_name_the_key(options, key) -> None:
    with pytest.raises(ConfigError, match=key):
        Worker("default", **options)


def test_bad_worker_queues_are_refused() -> None:
    with pytest.raises(ConfigError, match="queues"):
        Worker([""])


def test_bad_decorator_arguments_name_the_key() -> None:
    with pytest.raises(ConfigError, match="retries"):
        task(retries=-1)(lambda: None)
    with pytest.raises(ConfigError, match="timeout"):
        task(timeout=0)(lambda: None)
    with pytest.raises(ConfigError, match="queue"):
        task(queue="")(lambda: None)
    with pytest.raises(ConfigError, match="retries"):
        task(retries=2**31)(lambda: None)
    with pytest.raises(ConfigError, match="retry_backoff_max"):
        task(retry_backoff_max=math.inf)(lambda: None)
    with pytest.raises(ConfigError, match="timeout"):
        task(timeout=math.inf)(lambda: None)

    def not_async() -> None: ...

    with pytest.raises(ConfigError, match="async"):
        workflow(not_async)


def test_two_functions_with_one_name_are_refused() -> None:
    def first() -> None: ...

    def second() -> None: ...

    task(name="tests.duplicate")(first)
    with pytest.raises(ConfigError, match=r"tests\.duplicate"):
        task(name="tests.duplicate")(second)


def test_lone_surrogates_are_refused_at_enqueue_and_as_results(start_worker, db) -> None:
    with pytest.raises(SerializationError, match="lone surrogates"):
        basic.greet.queue("\ud800")
    assert count(db) == 0
    start_worker("basic")
    execution_id = basic.returns_lone_surrogate.queue()
    with pytest.raises(ExecutionFailed) as raised:
        rhythm_core.wait(execution_id, timeout=10)
    assert raised.value.error_type == "SerializationError"
    # the worker is unharmed
    assert rhythm_core.wait(basic.add.queue(1, 2), timeout=10) == 3


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RHYTHM_METRICS_INTERVAL", "inf"),
        ("RHYTHM_METRICS_INTERVAL", "nan"),
        ("RHYTHM_TRACING_ENDPOINT", "::not a url::"),
        ("RHYTHM_METRICS_ENDPOINT", "collector:99999"),
    ],
)
def test_bad_observability_variables_stop_the_worker_at_start_naming_them(variable, value) -> None:
    env = {**os.environ, variable: value, "RHYTHM_OBSERVABILITY_PROVIDER": "jsonl",
           "RHYTHM_TRACING_ENABLED": "true", "RHYTHM_METRICS_ENABLED": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "rhythm_core", "worker", "-m", "tests.apps.basic"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert variable in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("option", "value"), [("--poll-interval", "inf"), ("--claim-batch", "0")]
)
def test_bad_worker_flags_stop_the_worker_at_start_naming_them(option, value) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rhythm_core", "worker", "-m", "tests.apps.basic", option, value],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert option.strip("-").replace("-", "_") in done.stderr, done.stderr
