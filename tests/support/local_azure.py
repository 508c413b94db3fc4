"""Local stand-ins for the Azure endpoints the adapters call, over real HTTP(S).

Why this module is long: it is one process-local Azure. ARM (resources, providers, policy
listings), Resource Graph, PolicyInsights, Logs Ingestion and the managed-identity endpoint share
one HTTPS server, one token, one request log and one fault queue that tests drive together; split
per service, each part would re-implement those.

No real Azure exists where the tests run, and recorded cassettes or mocks of
the SDK would test our assumptions rather than the SDK. ``LocalAzure`` instead
runs two small stdlib servers on 127.0.0.1 so the *real* SDK clients
(``ResourceManagementClient``, ``ResourceGraphClient``, ``LogsIngestionClient``,
``DefaultAzureCredential``) talk real HTTP to them:

* an HTTPS server (throwaway CA from ``trustme``; azure-core refuses bearer
  tokens over plain http) answering like Azure Resource Manager (provider
  metadata, ``GET {resourceId}?api-version=``), like Azure Resource Graph
  (``POST /providers/Microsoft.ResourceGraph/resources``, over the rows in
  ``graph_resources``; see ``_graph_query`` for the KQL it understands) and like
  the Logs Ingestion API (``POST /dataCollectionRules/{rule}/streams/{stream}``, gzip JSON) and like
  PolicyInsights (``POST {resourceId}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults``,
  over ``policy_states``);
* a plain-HTTP managed-identity token endpoint in App Service style, which is
  what Azure Functions exposes through ``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``.

Every ARM, Graph and ingestion request must carry the bearer token the identity
endpoint issues. Requests are recorded in ``requests``; ``fail_next`` injects
throttling and outages. Usage::

    with LocalAzure() as local:
        local.put_resource(storage_account)
        client = ResourceManagementClient(local.credential(), sub, base_url=local.url,
                                          connection_verify=local.ca_file)
"""
from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import secrets
import shutil
import ssl
import tempfile
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

import trustme
from azure.core.credentials import AccessToken

from shared.domain.findings import FINDING_COLUMNS, SNAPSHOT_COLUMNS
from shared.domain.parity import PARITY_COLUMNS
from shared.domain.rejections import REJECTION_COLUMNS

INGESTION_API_VERSION = "2023-01-01"
GRAPH_API_VERSION = "2021-03-01"  # what azure-mgmt-resourcegraph 8.x sends
GRAPH_PATH = "/providers/microsoft.resourcegraph/resources"
GRAPH_MAX_ROWS = 1000  # per page ($top)
POLICY_INSIGHTS_API_VERSION = "2019-10-01"
MANAGEMENT_GROUPS_API_VERSION = "2020-05-01"  # shared/adapters/arm.py ArmManagementGroups
POLICY_STATES_SUFFIX = "/providers/microsoft.policyinsights/policystates/latest/queryresults"
GRAPH_MAX_SUBSCRIPTIONS = 1000  # per request
# Types Resource Graph keeps in ResourceContainers; every other row is in Resources.
GRAPH_CONTAINER_TYPES = {"microsoft.resources/subscriptions", "microsoft.resources/subscriptions/resourcegroups",
                         "microsoft.management/managementgroups"}
IDENTITY_API_VERSION = "2019-08-01"
LOCATIONS = ["West Europe", "North Europe", "East US", "East US 2"]

# namespace -> resource type -> api versions, in the order ARM lists them (newest first, previews mixed in).
DEFAULT_PROVIDERS: dict[str, dict[str, list[str]]] = {
    "Microsoft.Storage": {
        "storageAccounts": ["2024-01-01-preview", "2023-05-01", "2023-01-01", "2022-09-01"],
        "storageAccounts/blobServices": ["2023-05-01", "2023-04-01", "2022-09-01"],
    },
    "Microsoft.Network": {
        "networkSecurityGroups": ["2024-03-01", "2023-11-01", "2023-09-01"],
        "networkSecurityGroups/securityRules": ["2024-03-01", "2023-11-01"],
        "networkWatchers": ["2026-03-01", "2024-03-01"],
        "networkWatchers/flowLogs": ["2026-03-01", "2024-03-01"],
    },
    "Microsoft.KeyVault": {"vaults": ["2024-04-01-preview", "2023-07-01", "2023-02-01", "2022-07-01"]},
    "Microsoft.Resources": {"resourceGroups": ["2024-03-01", "2023-07-01", "2022-09-01"]},
    "Microsoft.Insights": {"diagnosticSettings": ["2021-05-01-preview", "2017-05-01-preview"]},
}
# Settings that would make DefaultAzureCredential use something other than App Service managed
# identity; tests unset them so the credential reaches the local identity endpoint.
OTHER_CREDENTIAL_SETTINGS = (
    "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_USERNAME", "AZURE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST", "AZURE_TOKEN_CREDENTIALS", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT",
    "MSI_ENDPOINT", "MSI_SECRET",
)
ERROR_CODES = {400: "BadRequest", 401: "AuthenticationFailed", 403: "AuthorizationFailed", 404: "NotFound",
               409: "Conflict", 429: "TooManyRequests", 500: "InternalServerError", 502: "BadGateway",
               503: "ServiceUnavailable", 504: "GatewayTimeout"}


@dataclass
class RecordedRequest:
    """One request a server received. ``status`` is what it answered."""

    target: str  # "arm" | "graph" | "ingestion" | "identity"
    method: str
    path: str  # decoded, leading slashes collapsed
    query: dict[str, str]
    status: int = 0
    body: Any = None  # the parsed JSON body of a Graph query (None for other targets)


@dataclass
class _Reply:
    status: int
    body: Any = None  # JSON-serialisable, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, {"error": {"code": code, "message": message}}, headers or {})


def _resource_type(parts: list[str]) -> str:
    """``Namespace/type[/childType]`` of a resource id split on '/' (ARM's own rule: the last provider wins)."""
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        return "Microsoft.Resources/" + ("resourceGroups" if "resourcegroups" in lowered else "subscriptions")
    at = len(lowered) - 1 - lowered[::-1].index("providers")
    return parts[at + 1] + "/" + "/".join(parts[at + 2::2])


def graph_row(resource: Mapping[str, Any]) -> dict:
    """An ARM object as Resource Graph holds it: lower-case ``type``, ``subscriptionId`` and
    ``resourceGroup`` columns, ``kind`` "" when the resource has none; a resource group
    becomes a ResourceContainers row of type ``microsoft.resources/subscriptions/resourcegroups``."""
    row = json.loads(json.dumps(resource))
    parts = row["id"].split("/")
    rtype = row["type"].lower()
    row["type"] = "microsoft.resources/subscriptions/resourcegroups" if rtype == "microsoft.resources/resourcegroups" \
        else rtype
    row["subscriptionId"] = parts[2]
    row["resourceGroup"] = parts[4] if len(parts) > 4 and parts[3].lower() == "resourcegroups" else ""
    row.setdefault("kind", "")
    return row


class StaticToken:
    """A TokenCredential returning a fixed token, for clients a test builds directly."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []  # every scope tuple asked for

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


class LocalAzure:
    """ARM, Logs Ingestion and a managed-identity endpoint on 127.0.0.1 (see the module docstring)."""

    def __init__(self, rule_id: str = "dcr-00000000000000000000000000000000",
                 stream_name: str = "Custom-ComplianceFindings") -> None:
        self.rule_id = rule_id
        self.stream_name = stream_name
        self.columns: list[str] = list(FINDING_COLUMNS)  # the stream's declared columns
        # further streams of the same rule (the posture snapshot), and what each received
        self.other_streams: dict[str, list[str]] = {"Custom-ComplianceSnapshot": list(SNAPSHOT_COLUMNS),
                                                    "Custom-ComplianceParity": list(PARITY_COLUMNS),
                                                    "Custom-ComplianceRejections": list(REJECTION_COLUMNS)}
        self.other_ingested: dict[str, list[dict]] = {}
        self.token = secrets.token_urlsafe(32)
        self.identity_header = secrets.token_hex(16)
        self.providers: dict[str, dict[str, list[str]]] = {
            ns: {t: list(v) for t, v in types.items()} for ns, types in DEFAULT_PROVIDERS.items()}
        # lower-case "Namespace/type" -> ARM alias metadata ({"name", "paths": [{"path", "apiVersions"}], "defaultPath"})
        self.aliases: dict[str, list[dict]] = {}
        self.requests: list[RecordedRequest] = []
        self.ingested: list[dict] = []
        self.ingestion_errors: list[str] = []
        # Resource Graph rows (see ``graph_row``); tests may replace or extend the list at any time.
        self.graph_resources: list[dict] = []
        # Azure Policy compliance states by lower-case resource id (PolicyInsights query results' rows)
        self.policy_states: dict[str, list[dict]] = {}
        self.policy_states_page = 1000
        self.url = self.identity_endpoint = self.ca_file = ""
        self._resources: dict[str, dict] = {}  # lower-case id -> ARM object
        # lower-case subscription id -> the management groups above it (names): what ARM's unfiltered
        # list of a subscription's policy assignments and exemptions inherits
        self.management_groups: dict[str, list[str]] = {}
        self.descendants_page = 1000  # items per page of a management group's descendants
        # Resource Graph's per-user quota, (requests, window seconds), or None for none: every reply carries
        # x-ms-user-quota-remaining and x-ms-user-quota-resets-after, a request over it gets 429.
        self.graph_quota: tuple[int, float] | None = None
        self._graph_listing: dict = {}
        self.graph_truncated = False  # answer as Graph does a query it cannot page: truncated, no $skipToken
        self._graph_times: deque = deque()
        self._faults: dict[str, deque] = {"arm": deque(), "graph": deque(), "ingestion": deque()}
        self._lock = threading.Lock()
        self._servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []
        self._remove_tmp: weakref.finalize | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "LocalAzure":
        tmp = tempfile.mkdtemp(prefix="local-azure-")
        self._remove_tmp = weakref.finalize(self, shutil.rmtree, tmp, ignore_errors=True)
        ca = trustme.CA()
        self.ca_file = str(Path(tmp, "ca.pem"))
        ca.cert_pem.write_to_path(self.ca_file)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(tls)

        https = self._serve(_AzureHandler)
        # Handshakes happen in the handler threads, so one slow client cannot block accept().
        https.socket = tls.wrap_socket(https.socket, server_side=True, do_handshake_on_connect=False)
        self.url = f"https://127.0.0.1:{https.server_address[1]}"
        identity = self._serve(_IdentityHandler)
        self.identity_endpoint = f"http://127.0.0.1:{identity.server_address[1]}/msi/token"
        for server, thread in self._servers:
            thread.start()
        return self

    def _serve(self, handler: type) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = False  # server_close() joins every handler thread: nothing leaks
        server.azure = self  # type: ignore[attr-defined]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"local-azure-{handler.__name__}", daemon=True)
        self._servers.append((server, thread))
        return server

    def stop(self) -> None:
        """Stop both servers and join their threads (idempotent); later connections are refused.

        ``ca_file`` stays until ``close()`` (or garbage collection), so a client built
        earlier fails with "connection refused", as against a real outage.
        """
        while self._servers:
            server, thread = self._servers.pop()
            server.shutdown()
            thread.join(timeout=5)
            server.server_close()

    def close(self) -> None:
        """``stop()`` and delete the CA file."""
        self.stop()
        if self._remove_tmp is not None:
            self._remove_tmp()

    def __enter__(self) -> "LocalAzure":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ test controls
    def env(self) -> dict[str, str]:
        """App settings that point the code under test at these servers."""
        return {
            "ARM_ENDPOINT": self.url,
            "LOGS_INGESTION__endpoint": self.url,
            "LOGS_INGESTION__ruleId": self.rule_id,
            "LOGS_INGESTION__streamName": self.stream_name,
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
            "REQUESTS_CA_BUNDLE": self.ca_file,
            "FINDINGS_SINK": "logsIngestion",
        }

    def credential(self) -> StaticToken:
        return StaticToken(self.token)

    def set_provider(self, namespace: str, api_versions: Mapping[str, Iterable[str]]) -> None:
        """Replace a provider's resource types: ``{"vaults": ["2023-07-01", ...]}``."""
        with self._lock:
            self.providers = {ns: t for ns, t in self.providers.items() if ns.lower() != namespace.lower()}
            self.providers[namespace] = {t: list(v) for t, v in api_versions.items()}

    def put_resource(self, resource: Mapping[str, Any]) -> None:
        with self._lock:
            self._resources[resource["id"].lower()] = json.loads(json.dumps(resource))

    def remove_resource(self, resource_id: str) -> None:
        with self._lock:
            self._resources.pop(resource_id.lower(), None)

    def fail_next(self, n: int, status: int = 503, retry_after: float | None = None, target: str = "arm",
                  code: str | None = None) -> None:
        """The next ``n`` authenticated requests to ``target`` ("arm" | "graph" | "ingestion") get ``status``."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        reply = _error(status, code or ERROR_CODES.get(status, "Error"), f"injected failure ({status})", headers)
        with self._lock:
            self._faults[target].extend([reply] * n)

    def calls(self, target: str | None = None, path_contains: str = "") -> list[RecordedRequest]:
        """Recorded requests to ``target`` whose path contains ``path_contains`` (case-insensitive)."""
        with self._lock:
            return [r for r in self.requests if (target is None or r.target == target)
                    and path_contains.lower() in r.path.lower()]

    # ------------------------------------------------------------------ request handling
    def _record(self, target: str, method: str, path: str, query: dict[str, str]) -> RecordedRequest:
        record = RecordedRequest(target, method, path, query)
        with self._lock:
            self.requests.append(record)
        return record

    def _dispatch(self, target: str, method: str, path: str, query: dict[str, str], headers: Mapping[str, str],
                  body: bytes) -> _Reply:
        auth = headers.get("Authorization")
        if not auth:
            return _error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        if auth != f"Bearer {self.token}":
            return _error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        with self._lock:
            if self._faults[target]:
                return self._faults[target].popleft()
        if target == "ingestion":
            return self._ingest(method, path, query, headers, body)
        if target == "graph":
            return self._graph_query(method, query, body)
        if method == "POST" and path.lower().rstrip("/").endswith(POLICY_STATES_SUFFIX):
            return self._policy_states(path, query)
        if method != "GET":
            return _error(405, "MethodNotAllowed", f"{method} is not served here")
        return self._arm_get(path, query)

    def _policy_states(self, path: str, query: dict[str, str]) -> _Reply:
        """PolicyInsights ``POST {resourceId}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults``
        over ``policy_states`` (pages of ``policy_states_page`` rows, ``@odata.nextLink`` with ``$skiptoken``)."""
        if query.get("api-version") != POLICY_INSIGHTS_API_VERSION:
            return _error(400, "InvalidApiVersionParameter",
                          f"The api-version '{query.get('api-version')}' is invalid. The supported versions are "
                          f"'{POLICY_INSIGHTS_API_VERSION}'.")
        if "$from" in query and not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", query["$from"]):
            return _error(400, "InvalidQueryParameterValue", f"Invalid $from value '{query['$from']}'.")
        resource_id = path.rstrip("/")[: -len(POLICY_STATES_SUFFIX)].lower()
        with self._lock:
            rows = [dict(r, resourceId=r.get("resourceId", resource_id)) for r in self.policy_states.get(resource_id, [])]
        start = int(query.get("$skiptoken") or 0)
        page = rows[start:start + self.policy_states_page]
        body: dict[str, Any] = {"@odata.context": "https://management.azure.com/providers/Microsoft.PolicyInsights/"
                                                  "policyStates/$metadata#latest", "@odata.count": len(page),
                                "value": page}
        if start + len(page) < len(rows):
            body["@odata.nextLink"] = (f"{self.url}{path}?api-version={POLICY_INSIGHTS_API_VERSION}"
                                       f"&$skiptoken={start + len(page)}")
        return _Reply(200, body)

    def _versions(self, namespace: str) -> tuple[str, dict[str, list[str]]] | None:
        with self._lock:
            return next(((ns, types) for ns, types in self.providers.items() if ns.lower() == namespace.lower()), None)

    def _provider_body(self, namespace: str, query: dict[str, str], prefix: str) -> dict:
        with_aliases = "aliases" in query.get("$expand", "").lower()
        with self._lock:
            types = dict(self.providers[namespace])
        return {
            "id": f"{prefix}/{namespace}", "namespace": namespace, "registrationState": "Registered",
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [{"resourceType": t, "locations": LOCATIONS, "apiVersions": v, "capabilities": "None",
                               **({"aliases": self.aliases.get(f"{namespace}/{t}".lower(), [])}
                                  if with_aliases else {})}
                              for t, v in types.items()],
        }

    def _arm_get(self, path: str, query: dict[str, str]) -> _Reply:
        parts = path.strip("/").split("/")
        if "api-version" not in query:
            return _error(400, "MissingApiVersionParameter",
                          "The api-version query parameter (?api-version=) is required for all requests.")
        lowered_path = [p.lower() for p in parts]
        if len(parts) == 5 and lowered_path[:3] == ["providers", "microsoft.management", "managementgroups"] \
                and lowered_path[4] == "descendants":
            return self._descendants(parts[3], query)
        if len(parts) == 1 and parts[0].lower() == "providers":  # every provider at tenant scope, one page
            with self._lock:
                names = list(self.providers)
            return _Reply(200, {"value": [self._provider_body(ns, query, "/providers") for ns in names]})
        tenant_scope = len(parts) == 2 and parts[0].lower() == "providers"
        if tenant_scope or (len(parts) == 4 and parts[0].lower() == "subscriptions" and parts[2].lower() == "providers"):
            found = self._versions(parts[-1])
            if found is None:
                return _error(404, "InvalidResourceNamespace", f"The resource namespace '{parts[-1]}' is invalid.")
            return _Reply(200, self._provider_body(found[0], query, "/providers" if tenant_scope
                                                   else f"/subscriptions/{parts[1]}/providers"))
        rtype = _resource_type(parts)
        namespace, _, type_path = rtype.partition("/")
        found = self._versions(namespace)
        if found is None:
            return _error(404, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid.")
        versions = next((v for t, v in found[1].items() if t.lower() == type_path.lower()), None)
        if versions is None:
            return _error(400, "InvalidResourceType", f"The resource type '{type_path}' could not be found "
                                                      f"in the namespace '{namespace}'.")
        if query["api-version"] not in versions:
            return _error(400, "NoRegisteredProviderFound",
                          f"No registered resource provider found for location 'westeurope' and API version "
                          f"'{query['api-version']}' for type '{type_path}'. The supported api-versions are "
                          f"'{', '.join(versions)}'.")
        inherited = self._policy_collection(parts)
        if inherited is not None:
            return _Reply(200, {"value": inherited})
        with self._lock:
            resource = self._resources.get(path.rstrip("/").lower())
            collection = [r for key, r in self._resources.items()
                          if key.rsplit("/", 1)[0] == path.rstrip("/").lower()]
        lowered = [p.lower() for p in parts]
        after = len(parts) - 1 - lowered[::-1].index("providers") if "providers" in lowered else len(parts)
        if resource is None and (len(parts) - after - 2) % 2 == 1:
            return _Reply(200, {"value": collection})  # a collection of children or extensions (maybe empty)
        if resource is None:
            return _error(404, "ResourceNotFound", f"The Resource '{rtype}/{parts[-1]}' was not found.")
        return _Reply(200, resource)

    def _descendants(self, group: str, query: dict[str, str]) -> _Reply:
        """"Management Groups - Get Descendants": the subscriptions whose ``management_groups`` hold ``group``
        (typed ``/subscriptions``) and the other groups above them (typed as management groups), pages of
        ``descendants_page`` with ``nextLink``; 404 for a group no subscription is below."""
        if query.get("api-version") != MANAGEMENT_GROUPS_API_VERSION:
            return _error(400, "InvalidApiVersionParameter", f"The api-version '{query.get('api-version')}' is invalid.")
        name = group.lower()
        with self._lock:
            chains = {sub: [g.lower() for g in groups] for sub, groups in self.management_groups.items()}
        if not any(name in chain for chain in chains.values()):
            return _error(404, "NotFound", f"Management group '{group}' not found.")
        mg = "/providers/Microsoft.Management/managementGroups/"
        items: list[dict] = []
        for other in sorted({g for chain in chains.values() if name in chain for g in chain} - {name}):
            items.append({"id": mg + other, "type": "Microsoft.Management/managementGroups", "name": other,
                          "properties": {"displayName": other, "parent": {"id": mg + name}}})
        for sub in sorted(s for s, chain in chains.items() if name in chain):
            items.append({"id": f"/subscriptions/{sub}", "type": "/subscriptions", "name": sub,
                          "properties": {"displayName": f"subscription {sub[:8]}", "parent": {"id": mg + name}}})
        start = int(query.get("$skiptoken") or 0)
        body: dict[str, Any] = {"value": items[start:start + self.descendants_page]}
        if start + self.descendants_page < len(items):
            body["nextLink"] = (f"{self.url}{mg}{group}/descendants?api-version={MANAGEMENT_GROUPS_API_VERSION}"
                                f"&$skiptoken={start + self.descendants_page}")
        return _Reply(200, body)

    def _policy_collection(self, parts: list[str]) -> list[dict] | None:
        """``/subscriptions/{s}/providers/Microsoft.Authorization/policyAssignments`` (or ``policyExemptions``)
        without a filter: those at the subscription, below it, and at the management groups above it
        (the documented unfiltered list). None for any other path."""
        lowered = [p.lower() for p in parts]
        if len(parts) != 5 or lowered[0] != "subscriptions" or lowered[2:4] != ["providers", "microsoft.authorization"] \
                or lowered[4] not in ("policyassignments", "policyexemptions"):
            return None
        sub = lowered[1]
        scopes = [f"/subscriptions/{sub}"] + [f"/providers/microsoft.management/managementgroups/{g.lower()}"
                                             for g in self.management_groups.get(sub, [])]
        marker = f"/providers/microsoft.authorization/{lowered[4]}/"
        with self._lock:
            items = list(self._resources.items())
        found = []
        for key, body in items:
            if marker not in key:
                continue
            scope = key.split(marker, 1)[0]
            if scope.startswith(scopes[0] + "/") or scope == scopes[0] or scope in scopes[1:]:
                found.append(body)
        return found

    def _graph_query(self, method: str, query: dict[str, str], body: bytes) -> _Reply:
        """A Resource Graph query, answered like the service (objectArray results only).

        The KQL understood is what ``shared.adapters.resource_graph`` sends: a table
        (``Resources`` or ``ResourceContainers``), then optionally ``where type in~ ('a', ...)``
        or ``where type =~ 'a'`` (case-insensitive), ``project col, ...`` and ``order by id asc``
        (rows are always in id order). Anything else is refused with 400, so a change in
        the query shows up here. ``$skipToken`` is opaque (base64 of an offset).
        """
        if method != "POST":
            return _error(405, "MethodNotAllowed", f"{method} is not served here")
        quota = self._graph_quota_headers()
        if quota is not None and quota["x-ms-user-quota-remaining"] == "-1":
            quota["x-ms-user-quota-remaining"] = "0"
            return _error(429, "RateLimiting", "Please provide below info when asking for support: quota exceeded",
                          {**quota, "Retry-After": str(max(1, round(self._graph_reset_seconds())))})
        reply = self._graph_answer(query, body)
        reply.headers.update(quota or {})
        return reply

    def _graph_reset_seconds(self) -> float:
        limit, window = self.graph_quota or (0, 0.0)
        return max(0.0, self._graph_times[0] + window - time.monotonic()) if self._graph_times else 0.0

    def _graph_quota_headers(self) -> dict[str, str] | None:
        """Count this request against the quota window ("Guidance for throttled requests in Azure Resource
        Graph": a fixed number of requests per window per user); remaining -1 means over it."""
        if self.graph_quota is None:
            return None
        limit, window = self.graph_quota
        now = time.monotonic()
        with self._lock:
            while self._graph_times and self._graph_times[0] <= now - window:
                self._graph_times.popleft()
            if len(self._graph_times) >= limit:
                remaining = -1
            else:
                self._graph_times.append(now)
                remaining = limit - len(self._graph_times)
            reset = self._graph_reset_seconds()
        seconds = int(reset)
        return {"x-ms-user-quota-remaining": str(remaining),
                "x-ms-user-quota-resets-after": f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
                                                f".{int((reset - seconds) * 1000):03d}"}

    def _graph_answer(self, query: dict[str, str], body: bytes) -> _Reply:
        if query.get("api-version") != GRAPH_API_VERSION:
            return _error(400, "InvalidApiVersionParameter", f"api-version {query.get('api-version')!r} is not "
                                                             f"supported here (only {GRAPH_API_VERSION})")
        try:
            request = json.loads(body)
            table, types, columns = _parse_kql(request["query"])
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, "InvalidQuery", f"query is not understood by this stand-in: {exc}")
        options = request.get("options") or {}
        subscriptions = request.get("subscriptions") or []
        if len(subscriptions) > GRAPH_MAX_SUBSCRIPTIONS:
            return _error(400, "BadRequest", f"{len(subscriptions)} subscriptions in one request; "
                                             f"at most {GRAPH_MAX_SUBSCRIPTIONS} are allowed")
        if options.get("resultFormat", "objectArray") != "objectArray":
            return _error(400, "BadRequest", "only resultFormat objectArray is served here")
        top = options.get("$top", GRAPH_MAX_ROWS)
        if not isinstance(top, int) or not 1 <= top <= GRAPH_MAX_ROWS:
            return _error(400, "BadRequest", f"$top must be 1..{GRAPH_MAX_ROWS}, got {top!r}")
        offset = options.get("$skip", 0)
        if options.get("$skipToken"):
            try:
                offset = int(base64.b64decode(options["$skipToken"], validate=True))
            except (binascii.Error, ValueError):
                return _error(400, "InvalidSkipToken", "the $skipToken is not valid")
        wanted = {s.lower() for s in subscriptions}
        with self._lock:
            # The filtered, sorted rows of one listing are kept while graph_resources holds the same rows
            # (a page of a large listing then costs its own rows, not a sort of everything).
            key = (table, frozenset(types) if types is not None else None, frozenset(wanted),
                   tuple(map(id, self.graph_resources)))
            rows = self._graph_listing.get(key)
            if rows is None:
                rows = [r for r in self.graph_resources
                        if (("resourcecontainers" if r["type"].lower() in GRAPH_CONTAINER_TYPES else "resources") == table
                            and (types is None or r["type"].lower() in types)
                            and (not wanted or r.get("subscriptionId", r["id"].split("/")[2]).lower() in wanted))]
                rows.sort(key=lambda r: r["id"])
                self._graph_listing = {key: rows}
            page = [{c: r.get(c) for c in columns} if columns is not None else r for r in rows[offset:offset + top]]
            page = json.loads(json.dumps(page))  # a copy: later changes to graph_resources do not alter a reply
        reply = {"totalRecords": len(rows), "count": len(page), "data": page, "resultTruncated": "false", "facets": []}
        if self.graph_truncated and offset + top < len(rows):
            reply["resultTruncated"] = "true"
        elif offset + top < len(rows):
            reply["$skipToken"] = base64.b64encode(str(offset + top).encode()).decode()
        return _Reply(200, reply)

    def _ingest(self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str],
                body: bytes) -> _Reply:
        parts = path.strip("/").split("/")
        if method != "POST" or len(parts) != 4 or parts[2].lower() != "streams":
            return _error(404, "NotFound", f"no ingestion route for {method} {path}")
        reply = self._check_batch(parts[1], parts[3], query, headers, body)
        if isinstance(reply, _Reply):
            with self._lock:
                self.ingestion_errors.append(reply.body["error"]["message"])
            return reply
        with self._lock:
            if parts[3] == self.stream_name:
                self.ingested.extend(reply)
            else:
                self.other_ingested.setdefault(parts[3], []).extend(reply)
        return _Reply(204)

    def _check_batch(self, rule_id: str, stream: str, query: dict[str, str], headers: Mapping[str, str],
                     body: bytes) -> _Reply | list[dict]:
        if query.get("api-version") != INGESTION_API_VERSION:
            return _error(400, "InvalidApiVersion", f"api-version {query.get('api-version')!r} is not supported")
        if rule_id != self.rule_id:
            return _error(400, "InvalidDataCollectionRule", f"data collection rule {rule_id!r} is unknown")
        if stream != self.stream_name and stream not in self.other_streams:
            return _error(400, "InvalidStream", f"stream {stream!r} is not declared in rule {rule_id}")
        if (headers.get("Content-Encoding") or "").lower() != "gzip":
            return _error(400, "InvalidContent", "expected Content-Encoding: gzip")
        try:
            records = json.loads(gzip.decompress(body))
        except (OSError, EOFError, ValueError) as exc:
            return _error(400, "InvalidContent", f"body is not gzip-compressed JSON: {exc}")
        if not isinstance(records, list):
            return _error(400, "InvalidContent", "body must be a JSON array of records")
        expected = set(self.columns) if stream == self.stream_name else set(self.other_streams[stream])
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                return _error(400, "InvalidRecord", f"record {index} is not a JSON object")
            missing, extra = sorted(expected - record.keys()), sorted(record.keys() - expected)
            if missing or extra:
                return _error(400, "InvalidRecord", f"record {index} does not match stream {stream}: "
                                                    f"missing {missing}, unexpected {extra}")
        return records

    def _issue_token(self, headers: Mapping[str, str], query: dict[str, str]) -> _Reply:
        if headers.get("X-IDENTITY-HEADER") != self.identity_header:
            return _Reply(401, {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong"})
        if query.get("api-version") != IDENTITY_API_VERSION or not query.get("resource"):
            return _Reply(400, {"statusCode": 400, "message": "api-version 2019-08-01 and resource are required"})
        return _Reply(200, {"access_token": self.token, "expires_on": str(int(time.time()) + 3600),
                            "resource": query["resource"], "token_type": "Bearer",
                            "client_id": "00000000-0000-0000-0000-00000000c11e"})


_KQL_STRING = re.compile(r"'([^'\\]*)'")
_KQL_STRING_LIST = re.compile(r"\((\s*'[^'\\]*'\s*,?)*\)")


def _parse_kql(text: str) -> tuple[str, set[str] | None, list[str] | None]:
    """(table, lower-case types or None, projected columns or None) of the KQL ``_graph_query`` understands."""
    table, *steps = [s.strip() for s in text.split("|")]
    if table.lower() not in ("resources", "resourcecontainers"):
        raise ValueError(f"unknown table {table!r}")
    types = columns = None
    for step in steps:
        words = step.split(None, 3)
        if words[:3] == ["where", "type", "in~"] and len(words) == 4 and _KQL_STRING_LIST.fullmatch(words[3]):
            types = {t.lower() for t in _KQL_STRING.findall(words[3])}
        elif words[:3] == ["where", "type", "=~"] and len(words) == 4 and _KQL_STRING.fullmatch(words[3]):
            types = {_KQL_STRING.fullmatch(words[3]).group(1).lower()}
        elif words and words[0] == "project" and len(step.split(None, 1)) == 2:
            columns = [c.strip() for c in step.split(None, 1)[1].split(",")]
        elif step != "order by id asc":
            raise ValueError(f"unsupported step {step!r}")
    return table.lower(), types, columns


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.0: one request per connection, so handler threads end and join promptly."""

    timeout = 10
    target = ""

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _parse(self) -> tuple[str, dict[str, str], bytes]:
        url = urlsplit(self.path)
        path = "/" + unquote(url.path).lstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        return path, dict(parse_qsl(url.query, keep_blank_values=True)), self.rfile.read(length) if length else b""

    def _send(self, reply: _Reply) -> None:
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _AzureHandler(_Handler):
    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        self.request.do_handshake()
        super().setup()

    def _handle(self) -> None:
        azure: LocalAzure = self.server.azure  # type: ignore[attr-defined]
        path, query, body = self._parse()
        lowered = path.lower().rstrip("/")
        target = ("ingestion" if lowered.startswith("/datacollectionrules/")
                  else "graph" if lowered == GRAPH_PATH else "arm")
        record = azure._record(target, self.command, path, query)
        if target == "graph":
            try:
                record.body = json.loads(body)
            except ValueError:
                pass
        reply = azure._dispatch(target, self.command, path, query, self.headers, body)
        record.status = reply.status
        self._send(reply)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class _IdentityHandler(_Handler):
    def do_GET(self) -> None:
        azure: LocalAzure = self.server.azure  # type: ignore[attr-defined]
        path, query, _ = self._parse()
        record = azure._record("identity", "GET", path, query)
        found = path == "/msi/token"
        reply = azure._issue_token(self.headers, query) if found else _Reply(404, {"message": "not found"})
        record.status = reply.status
        self._send(reply)
