"""The REST API fuzzed from its own OpenAPI document (schemathesis): no 5xx, and
responses that match the document.

A short run here (``TRELLIS_FUZZ_EXAMPLES``, default 8 examples per
operation); docs/operations.md gives the longer run.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ALL_PLUGINS

EXAMPLES = int(os.environ.get("TRELLIS_FUZZ_EXAMPLES", "8"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    """One app with every plugin and demo data, shared by all operations."""
    from trellis.testing import ADMIN, build_app, dispose

    app = build_app(tmp_path_factory.mktemp("fuzz"), plugins=ALL_PLUGINS)
    with app.app_context():
        from trellis.demo import load_demo

        load_demo(contacts=10)
    client = app.test_client()
    token = client.post("/api/v1/security/login", json={
        "username": ADMIN[0], "password": ADMIN[1], "provider": "db"}).get_json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/_openapi", app, headers=headers)
    schema.config.headers = headers  # every generated request is signed in as admin
    yield schema
    dispose(app)


def test_the_api_survives_its_own_openapi_document(api_schema):
    """Every operation, fuzzed; all failures reported together."""
    from hypothesis import given

    failures = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            case.call_and_validate(checks=CHECKS)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - report all at the end
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc).strip()[:1500]}")
    assert operations > 50
    assert not failures, f"{len(failures)} of {operations} operations failed:\n\n" + \
        "\n\n".join(failures)
