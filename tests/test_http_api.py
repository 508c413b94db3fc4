"""The HTTP endpoints: evaluate now and read compliance; bad ids and out-of-scope ids refused."""
from __future__ import annotations

import base64
import json

import azure.functions as func
import pytest

from handlers.http_api import compliance, evaluate
from shared import bootstrap
from shared.adapters.memory import InMemoryStateStore, MemorySink, StaticResourceReader
from shared.domain.scopes import Scopes
from shared.service.changes import Dependencies
from tests.conftest import pipeline_catalog
from tests.test_service import SA_ID, SUB, weak

OTHER = SA_ID.replace(SUB, "99999999-0000-4000-8000-000000000009")


@pytest.fixture
def deps():
    d = Dependencies(pipeline_catalog(), StaticResourceReader([weak(allowBlobPublicAccess=True)]),
                     InMemoryStateStore(), MemorySink(), scopes=Scopes.parse([f"/subscriptions/{SUB}"]))
    bootstrap.override(d)
    yield d
    bootstrap.override(None)


def call(function, method, params=None, body=None, headers=None):
    request = func.HttpRequest(method=method, url=f"/api/{function.build().get_function_name()}",
                               params=params or {}, headers=headers or {},
                               body=json.dumps(body).encode() if body is not None else b"")
    response = function.build().get_user_function()(request)
    return response.status_code, json.loads(response.get_body() or b"null")


def test_evaluate_now_returns_results_and_records_findings(deps, monkeypatch):
    # The caller is the principal App Service Authentication validated (see test_hostile.py for spoofing).
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    principal = {"auth_typ": "aad", "name_typ": "name", "claims": [{"typ": "name", "val": "ops@contoso.com"}]}
    status, body = call(evaluate, "POST", body={"resourceId": SA_ID.lower()},
                        headers={"x-ms-client-principal": base64.b64encode(json.dumps(principal).encode()).decode()})
    assert status == 200, body
    assert body["resourceId"] == SA_ID.lower().replace("resourcegroups", "resourceGroups")
    verdicts = {r["controlId"]: r["status"] for r in body["results"]}
    assert verdicts["storage-no-public-blob-access"] == "NonCompliant" and verdicts["storage-https-only"] == "Compliant"
    assert [(f["Transition"], f["Caller"]) for f in body["findings"]] == [("New", "ops@contoso.com")]
    assert deps.sink.records == body["findings"]

    status, state = call(compliance, "GET", params={"resourceId": SA_ID})
    assert status == 200
    control = next(c for c in state["controls"] if c["controlId"] == "storage-no-public-blob-access")
    assert control["status"] == "NonCompliant" and control["dueDate"] and control["evidence"]


def test_child_resource_ids_map_to_the_tracked_resource(deps):
    status, body = call(evaluate, "POST", params={"resourceId": SA_ID + "/blobServices/default"})
    assert status == 200 and body["resourceId"] == SA_ID


@pytest.mark.parametrize("function, method, kwargs, code, words", [
    (evaluate, "POST", {}, 400, "give the resource id"),
    (evaluate, "POST", {"body": {"resourceId": "storage-account-1"}}, 400, "not an Azure resource id"),
    (evaluate, "POST", {"body": ["not", "an", "object"]}, 400, "give the resource id"),
    (evaluate, "POST", {"body": {"resourceId": OTHER}}, 403, "outside the monitored scopes"),
    (compliance, "GET", {"params": {"resourceId": OTHER}}, 403, "outside the monitored scopes"),
    (compliance, "GET", {"params": {"resourceId": SA_ID}}, 404, "never been evaluated"),
])
def test_bad_requests_are_refused_with_a_reason(deps, function, method, kwargs, code, words):
    status, body = call(function, method, **kwargs)
    assert status == code and words in body["error"]
    assert deps.reader.reads == 0  # nothing was read for a refused request


def test_evaluating_a_resource_that_does_not_exist_is_404(deps):
    deps.reader.remove(SA_ID)
    status, body = call(evaluate, "POST", body={"resourceId": SA_ID})
    assert status == 404 and "does not exist" in body["error"]


def principal_header(name: str = "ops@contoso.com") -> dict:
    principal = {"auth_typ": "aad", "name_typ": "name", "claims": [{"typ": "name", "val": name}]}
    return {"x-ms-client-principal": base64.b64encode(json.dumps(principal).encode()).decode()}


def test_required_authentication_refuses_a_function_key_alone(deps, monkeypatch):
    """API_REQUIRE_AUTHENTICATION=true (requireApiAuthentication in the templates): a call App Service
    Authentication did not validate is 401 on both endpoints, before anything is read or recorded; with
    App Service Authentication not even enabled the message says what to deploy."""
    monkeypatch.setenv("API_REQUIRE_AUTHENTICATION", "true")
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)
    status, body = call(evaluate, "POST", body={"resourceId": SA_ID}, headers=principal_header())
    assert status == 401 and "App Service Authentication is not enabled" in body["error"]
    assert "apiAuthClientId" in body["error"]

    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    for function, method, kwargs in ((evaluate, "POST", {"body": {"resourceId": SA_ID}}),
                                     (compliance, "GET", {"params": {"resourceId": SA_ID}})):
        status, body = call(function, method, **kwargs)
        assert status == 401 and "requires a Microsoft Entra ID token" in body["error"], body
    assert deps.reader.reads == 0 and deps.sink.records == []

    status, body = call(evaluate, "POST", body={"resourceId": SA_ID}, headers=principal_header())
    assert status == 200, body
    assert [f["Caller"] for f in body["findings"]] == ["ops@contoso.com"]


def test_authentication_is_not_required_unless_the_setting_says_so(deps, monkeypatch):
    """The default (the quick start): the function key alone is enough, as before."""
    monkeypatch.delenv("API_REQUIRE_AUTHENTICATION", raising=False)
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)
    status, body = call(evaluate, "POST", body={"resourceId": SA_ID})
    assert status == 200 and [f["Caller"] for f in body["findings"]] == ["api (function key)"]


def test_an_invalid_require_authentication_setting_names_the_setting():
    from shared.config import ConfigurationError, Settings

    assert Settings.from_env({"API_REQUIRE_AUTHENTICATION": "TRUE"}).api_require_authentication is True
    assert Settings.from_env({}).api_require_authentication is False
    with pytest.raises(ConfigurationError, match="API_REQUIRE_AUTHENTICATION='yes'"):
        Settings.from_env({"API_REQUIRE_AUTHENTICATION": "yes"})
