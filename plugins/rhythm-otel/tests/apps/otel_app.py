"""The application a test's worker imports: its own OpenTelemetry SDK pipeline (to
``APP_OTLP_ENDPOINT``) with requests and psycopg instrumented, as an application that traces
its own calls sets itself up."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from rhythm_core.testing import user_code

provider = TracerProvider(resource=Resource.create({"service.name": "application"}))
provider.add_span_processor(
    SimpleSpanProcessor(OTLPSpanExporter(endpoint=os.environ["APP_OTLP_ENDPOINT"], insecure=True))
)
trace.set_tracer_provider(provider)
RequestsInstrumentor().instrument()
PsycopgInstrumentor().instrument()
user_code.open_span = trace.get_tracer("application").start_as_current_span
