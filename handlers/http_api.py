"""HTTP endpoints (function key required): evaluate a resource now, read its current compliance.

Both refuse resources outside MONITORED_SCOPES, so the function's Reader identity
cannot be used to read arbitrary resources.
"""
from __future__ import annotations

import json
import logging

import azure.functions as func

log = logging.getLogger(__name__)
bp = func.Blueprint()


def _json(body: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json")


def _error(status: int, message: str) -> func.HttpResponse:
    return _json({"error": message}, status)


def _resource_id(req: func.HttpRequest) -> str | None:
    value = req.params.get("resourceId")
    if value:
        return value
    try:
        body = req.get_json()
    except ValueError:
        return None
    return body.get("resourceId") if isinstance(body, dict) else None


def _checked(req: func.HttpRequest):
    """(ResourceId, deps) or an error response."""
    from shared import bootstrap
    from shared.events import printable
    from shared.resource_ids import InvalidResourceId, parse_resource_id, tracked_resource

    text = _resource_id(req)
    if not text:
        return None, _error(400, "give the resource id as ?resourceId=... or a JSON body {\"resourceId\": ...}")
    try:
        rid = tracked_resource(parse_resource_id(text))
    except InvalidResourceId as exc:
        return None, _error(400, f"not an Azure resource id: {printable(exc)}")
    deps = bootstrap.dependencies()
    if not deps.scopes.allows(rid):
        log.warning("HTTP request for %s refused: outside the monitored scopes", printable(rid.value))
        return None, _error(403, "the resource is outside the monitored scopes")
    return (rid, deps), None


@bp.function_name("evaluate")
@bp.route(route="evaluate", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def evaluate(req: func.HttpRequest) -> func.HttpResponse:
    from shared.controls import results_as_json
    from shared.service import evaluate_now

    checked, error = _checked(req)
    if error:
        return error
    rid, deps = checked
    caller = req.headers.get("x-ms-client-principal-name") or "api"
    outcome = evaluate_now(rid, deps, caller)
    if outcome.skipped and not outcome.results:
        return _error(404, f"{rid.value}: {outcome.skipped}")
    return _json({"resourceId": rid.value, "results": results_as_json(rid.value, outcome.results),
                  "findings": outcome.findings, "pending": outcome.pending})


@bp.function_name("compliance")
@bp.route(route="compliance", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def compliance(req: func.HttpRequest) -> func.HttpResponse:
    checked, error = _checked(req)
    if error:
        return error
    rid, deps = checked
    state = deps.store.load(rid)
    if state is None:
        return _error(404, f"{rid.value} has never been evaluated")
    return _json({
        "resourceId": state.resource_id, "resourceType": state.resource_type, "deleted": state.deleted,
        "owner": state.owner, "team": state.team, "lastEvaluated": state.last_evaluated,
        "lastEventId": state.last_event_id,
        "controls": [{"controlId": cid, "status": cs.status.value if cs.status else "NotEvaluated",
                      "since": cs.since, "dueDate": cs.due, "note": cs.note, "evidence": list(cs.evidence)}
                     for cid, cs in sorted(state.controls.items())],
    })
