"""The OpenAPI 3.1 document of the JSON API (``/api/openapi.json``) and its readable page
(``/api/docs``), generated from the code.

Paths and methods come from the app's URL map (every rule under ``/api/``), path parameters
from the rule's variables, and bodies from the pydantic models each route's ``Operation``
names in portal/api_models (``model_json_schema`` speaks JSON Schema 2020-12, which is what
OpenAPI 3.1 uses). A rule without an operation is left out, and the test suite fails naming
it. The page is a static file that fetches this document and lays it out with DOM nodes only:
no CDN, nothing inline, so it lives under the same Content-Security-Policy as every page.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, render_template
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from portal.api_models import OPERATIONS, Operation
from portal.api_models.common import Error

bp = Blueprint("openapi", __name__)

TITLE = "TickZen Portal API"
VERSION = "1"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_VARIABLE = re.compile(r"<(?:(?P<converter>[a-z]+)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_]+)>")
_CONVERTER_TYPES = {"int": {"type": "integer"}, "float": {"type": "number"},
                    "path": {"type": "string"}, "string": {"type": "string"},
                    "default": {"type": "string"}}
REF = "#/components/schemas/{model}"


def api_rules(app: Flask) -> list[tuple[Rule, str]]:
    """Every (rule, method) of the app under /api/, in path order."""
    pairs = [(rule, method) for rule in app.url_map.iter_rules()
             if rule.rule.startswith("/api/")
             for method in sorted((rule.methods or set()) & set(METHODS))]
    return sorted(pairs, key=lambda p: (p[0].rule, METHODS.index(p[1])))


def openapi_path(rule: Rule) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """``/api/runs/<run_id>`` -> ``/api/runs/{run_id}`` and its variables' schemas."""
    params: list[tuple[str, dict[str, Any]]] = []

    def swap(match: re.Match[str]) -> str:
        params.append((match["name"], dict(_CONVERTER_TYPES.get(match["converter"] or
                                                                "default", {"type": "string"}))))
        return "{" + match["name"] + "}"

    return _VARIABLE.sub(swap, rule.rule), params


def _models(operations: list[Operation]) -> tuple[dict[tuple[type[BaseModel], str], Any],
                                                   dict[str, Any]]:
    """Each model's schema (a $ref) per mode, and the shared definitions."""
    wanted: list[tuple[type[BaseModel], Any]] = [(Error, "serialization")]
    for op in operations:
        if op.body is not None:
            wanted.append((op.body, "validation"))
        wanted += [(model, "serialization") for model in op.answers.values()]
    unique = list(dict.fromkeys(wanted))
    refs, top = models_json_schema(unique, ref_template=REF)
    return refs, top.get("$defs", {})


def _operation(op: Operation, endpoint: str, method: str,
               path_params: list[tuple[str, dict[str, Any]]],
               refs: dict[tuple[type[BaseModel], str], Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"operationId": f"{endpoint}.{method.lower()}",
                           "summary": op.summary, "tags": [op.tag]}
    if op.description:
        doc["description"] = op.description
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": op.path.get(name, schema)} for name, schema in path_params]
    parameters += [{"name": p.name, "in": "query", "required": p.required,
                    "schema": p.schema, **({"description": p.description}
                                           if p.description else {})} for p in op.query]
    if parameters:
        doc["parameters"] = parameters
    if op.body is not None:
        doc["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": refs[(op.body, "validation")]}}}
    elif op.multipart is not None:
        doc["requestBody"] = {"required": True, "content": {"multipart/form-data": {
            "schema": {"type": "object", "properties": op.multipart,
                       "required": ["file"] if "file" in op.multipart else []}}}}
    responses: dict[str, Any] = {}
    for status, model in op.answers.items():
        body = ({"schema": refs[(model, "serialization")]} if op.media == "application/json"
                else {"schema": {"type": "string"}})
        responses[str(status)] = {"description": model.__doc__ or "Success",
                                  "content": {op.media: body}}
    error = {"schema": refs[(Error, "serialization")]}
    for status in sorted(set(op.errors) | {500} | ({401} if not op.public else set())):
        responses[str(status)] = {"description": "Error", "content": {"application/json": error}}
    doc["responses"] = responses
    doc["security"] = [] if op.public else [{"bearer": []}, {"session": []}]
    return doc


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s documented /api/ routes."""
    documented = [(rule, method, OPERATIONS[(rule.endpoint, method)])
                  for rule, method in api_rules(app) if (rule.endpoint, method) in OPERATIONS]
    refs, definitions = _models([op for _, _, op in documented])
    paths: dict[str, dict[str, Any]] = {}
    for rule, method, op in documented:
        path, params = openapi_path(rule)
        paths.setdefault(path, {})[method.lower()] = _operation(op, rule.endpoint, method,
                                                                params, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "JSON API of the TickZen Portal. Authenticate with "
                                "`Authorization: Bearer tz_...` (a personal token from "
                                "/account), or with the session cookie plus `X-CSRFToken` "
                                "on writes. Errors are `{error, details?}` with a 4xx."},
        "paths": paths,
        "components": {
            "schemas": definitions,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A personal API token (tz_...)."},
                "session": {"type": "apiKey", "in": "cookie", "name": "session",
                            "description": "The browser session; writes also need the "
                                           "X-CSRFToken header."}},
        },
    }


@bp.get("/api/openapi.json")
def spec() -> Response:
    """The document, built once per app (routes and models do not change while it runs)."""
    document = current_app.extensions.get("openapi")
    if document is None:
        document = current_app.extensions["openapi"] = build_document(current_app)
    return jsonify(document)


@bp.get("/api/docs")
def docs() -> str:
    return render_template("api/docs.html")
