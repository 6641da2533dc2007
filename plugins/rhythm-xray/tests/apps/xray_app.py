"""The application a test's worker imports: the X-Ray SDK's recorder with requests and
psycopg patched, as an application that traces its own calls with aws-xray-sdk sets itself
up."""

from __future__ import annotations

import os

from aws_xray_sdk.core import patch, xray_recorder

from rhythm_core.testing import user_code

xray_recorder.configure(
    service="application", sampling=False, daemon_address=os.environ["AWS_XRAY_DAEMON_ADDRESS"]
)
patch(("requests", "psycopg"))
user_code.open_span = xray_recorder.in_subsegment
