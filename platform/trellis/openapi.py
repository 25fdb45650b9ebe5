"""The OpenAPI document (``/api/v1/_openapi``, Swagger UI at ``/swagger/v1``), as
FAB builds it from every API's docstrings, then corrected once for all APIs so
that it says what the endpoints really answer (``tests/test_fuzz_api.py``
checks it):

* a path parameter whose Flask converter is ``int`` is an integer (FAB writes
  a string), so clients and fuzzers send numbers;
* every operation may answer 401 and 403 (login, permission) and 404 (a
  disabled plugin's endpoints, an id that does not exist), and, when it takes
  input (parameters or a body), 400 with field errors.
"""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from flask import current_app
from flask_appbuilder.api.manager import OpenApi
from werkzeug.routing import IntegerConverter

_RULE_ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
METHODS = ("get", "put", "post", "delete", "patch")


def _integer_params() -> dict[str, set[str]]:
    """``{spec path: {names of int path parameters}}`` from the app's URL map."""
    out: dict[str, set[str]] = {}
    for rule in current_app.url_map.iter_rules():
        ints = {name for name, conv in rule._converters.items()
                if isinstance(conv, IntegerConverter)}
        if ints:
            out[_RULE_ARG.sub(r"{\1}", rule.rule)] = ints
    return out


def correct(spec: dict[str, Any]) -> dict[str, Any]:
    """Apply the corrections above to a finished document (in place)."""
    ints = _integer_params()
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            params = operation.setdefault("parameters", [])
            declared = {p.get("name") for p in params if p.get("in") == "path"}
            for name in re.findall(r"{([^}]+)}", path):
                if name not in declared:  # FAB leaves some out
                    params.append({"in": "path", "name": name, "required": True,
                                   "schema": {"type": "string"}})
            for param in params:
                if param.get("in") == "path" and param.get("name") in ints.get(path, ()):
                    param["schema"] = {"type": "integer", "minimum": 0,
                                       "maximum": 2**63 - 1}
            responses = operation.setdefault("responses", {})
            answers = ["401", "403", "404"]
            if params or "requestBody" in operation or method == "delete":
                answers.insert(0, "400")
            for status in answers:
                responses.setdefault(status, {"$ref": f"#/components/responses/{status}"})
    return spec


class CorrectedSpec(APISpec):
    def to_dict(self) -> dict[str, Any]:
        return correct(super().to_dict())


class TrellisOpenApi(OpenApi):
    """FAB's OpenAPI endpoint, serving the corrected document."""

    class_permission_name = "OpenApi"

    @staticmethod
    def _create_api_spec(version: str) -> APISpec:
        spec = OpenApi._create_api_spec(version)
        spec.__class__ = CorrectedSpec
        return spec
