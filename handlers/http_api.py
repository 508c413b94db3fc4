"""HTTP endpoints (function key required): evaluate a resource now, read its current compliance.

Both refuse resources outside MONITORED_SCOPES, so the function's Reader identity
cannot be used to read arbitrary resources, and bodies over ``MAX_BODY_BYTES`` (413).

Who called: only a principal App Service Authentication validated. With it on
(``infra/modules/function-app-auth.bicep``; the platform then sets
``WEBSITE_AUTH_ENABLED=True``) App Service injects ``X-MS-CLIENT-PRINCIPAL`` and
refuses it from outside, so it is trusted; without it any such header is a
claim by whoever holds the function key, and ignored (``Caller`` is
"api (function key)"). With ``API_REQUIRE_AUTHENTICATION=true`` a request App
Service Authentication did not validate is refused (401) whatever key it has
(``shared/domain/api_access.py``).
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import os

import azure.functions as func

log = logging.getLogger(__name__)
bp = func.Blueprint()
MAX_BODY_BYTES = 64 * 1024  # a request names one resource id: anything near this is not a request of ours
UNAUTHENTICATED_CALLER = "api (function key)"
_NAME_CLAIMS = ("preferred_username", "name", "upn",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")
_OID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")


class Unauthenticated(ValueError):
    """A principal header that App Service Authentication would never have produced."""


def authentication_enabled() -> bool:
    return os.environ.get("WEBSITE_AUTH_ENABLED", "").strip().lower() == "true"


def caller_of(req: func.HttpRequest) -> str:
    """The validated caller's name (or object id), or ``UNAUTHENTICATED_CALLER`` without App Service Authentication."""
    from shared.domain.events import printable

    encoded = req.headers.get("x-ms-client-principal")
    if not authentication_enabled():
        if encoded or req.headers.get("x-ms-client-principal-name"):
            log.warning("HTTP request carries client-principal headers but App Service Authentication is off: "
                        "ignored (Caller is %r)", UNAUTHENTICATED_CALLER)
        return UNAUTHENTICATED_CALLER
    if not encoded:
        raise Unauthenticated("no validated client principal (X-MS-CLIENT-PRINCIPAL) on the request")
    try:
        principal = json.loads(base64.b64decode(encoded, validate=True))
        claims = {c["typ"]: c["val"] for c in principal["claims"] if isinstance(c.get("val"), str)}
    except (binascii.Error, ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
        raise Unauthenticated("the client principal header (X-MS-CLIENT-PRINCIPAL) is not valid") from None
    name_type = principal.get("name_typ") if isinstance(principal, dict) else None
    for claim in ((name_type,) if name_type else ()) + _NAME_CLAIMS + _OID_CLAIMS:
        if claims.get(claim):
            return printable(claims[claim], 200)
    raise Unauthenticated("the client principal (X-MS-CLIENT-PRINCIPAL) names nobody")


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


def _too_large(req: func.HttpRequest) -> func.HttpResponse | None:
    declared = req.headers.get("content-length", "")
    size = int(declared) if declared.isdigit() else len(req.get_body() or b"")
    if size > MAX_BODY_BYTES:
        log.warning("HTTP request refused: body of %d bytes (limit %d)", size, MAX_BODY_BYTES)
        return _error(413, f"request body is {size} bytes; at most {MAX_BODY_BYTES}")
    return None


def _unauthenticated(req: func.HttpRequest) -> func.HttpResponse | None:
    """401 when API_REQUIRE_AUTHENTICATION is on and App Service Authentication validated no caller."""
    from shared.config import Settings
    from shared.domain.api_access import refusal

    reason = refusal(Settings.from_env().api_require_authentication, authentication_enabled(),
                     req.headers.get("x-ms-client-principal"))
    if reason:
        log.warning("HTTP request refused: %s", reason)
        return _error(401, reason)
    return None


def _checked(req: func.HttpRequest):
    """(ResourceId, deps) or an error response."""
    from shared import bootstrap
    from shared.domain.events import printable
    from shared.domain.resource_ids import InvalidResourceId, parse_resource_id, tracked_resource

    unauthenticated = _unauthenticated(req)
    if unauthenticated:
        return None, unauthenticated
    too_large = _too_large(req)
    if too_large:
        return None, too_large
    text = _resource_id(req)
    if not text:
        return None, _error(400, "give the resource id as ?resourceId=... or a JSON body {\"resourceId\": ...}")
    try:
        rid = tracked_resource(parse_resource_id(text))
    except InvalidResourceId as exc:
        return None, _error(400, f"not an Azure resource id: {printable(exc)}")
    deps = bootstrap.dependencies()
    try:
        allowed = deps.scopes.allows(rid)
    except Exception as exc:  # the management groups could not be listed: the caller may try again
        log.warning("HTTP request for %s: the monitored scopes could not be checked: %s", printable(rid.value), exc)
        return None, _error(503, "the monitor could not list the subscriptions below its management groups "
                                 f"(Reader on each group is needed): {printable(str(exc).splitlines()[0][:300])}")
    if not allowed:
        log.warning("HTTP request for %s refused: outside the monitored scopes", printable(rid.value))
        return None, _error(403, "the resource is outside the monitored scopes")
    return (rid, deps), None


@bp.function_name("evaluate")
@bp.route(route="evaluate", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def evaluate(req: func.HttpRequest) -> func.HttpResponse:
    from shared.catalog import results_as_json
    from shared.domain.events import EventRejected
    from shared.service.changes import evaluate_now

    checked, error = _checked(req)
    if error:
        return error
    rid, deps = checked
    try:
        caller = caller_of(req)
    except Unauthenticated as exc:
        log.warning("HTTP request refused: %s", exc)
        return _error(401, str(exc))
    try:
        outcome = evaluate_now(rid, deps, caller)
    except EventRejected as exc:  # can never succeed (the state cannot be stored): say why, do not retry
        log.error("HTTP evaluation of %s refused: %s", rid.value, exc.reason)
        return _error(422, exc.reason)
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
