"""ResourceReader over Azure Resource Manager (``azure-mgmt-resource``, ``azure-mgmt-network``).

``resources.get_by_id`` needs an api-version per resource type; it is resolved
from the provider's metadata (newest stable version, else newest preview) and
cached for the life of the process. A 404 means the resource is gone.

Related resources (auditIfNotExists-style controls) are read through the same
client: a child or extension by id, a list of them through the client's own
pipeline (auth, retries) and ``ItemPaged``. Network Watcher flow logs are read
with the typed ``NetworkManagementClient`` (its pinned api-version, no
provider lookup). Azure Policy's compliance states of a resource (controls that take
Azure Policy's verdict) come from PolicyInsights' ``policyStates/latest/queryResults``
through the same pipeline, paged on ``@odata.nextLink``.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import quote

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.paging import ItemPaged
from azure.core.rest import HttpRequest
from azure.mgmt.resource.resources import ResourceManagementClient

from ..catalog import RelatedSpec
from ..domain.policy_states import POLICY_STATES_TYPE, STATES_WINDOW_DAYS
from ..service.ports import ResourceAccessDenied, ResourceUnreadable
from ..domain.resource_ids import InvalidResourceId, ResourceId, parse_resource_id

FLOW_LOG_TYPE = "microsoft.network/networkwatchers/flowlogs"

log = logging.getLogger(__name__)


class UnknownResourceType(ResourceUnreadable, LookupError):
    """The provider does not list the resource type, so no api-version can be chosen."""


def pick_api_version(versions: list[str]) -> str | None:
    stable = sorted((v for v in versions if "preview" not in v.lower()), reverse=True)
    if stable:
        return stable[0]
    return sorted(versions, reverse=True)[0] if versions else None


def _paged(client: ResourceManagementClient, method: str, first: str, next_key: str, what: str,
           bad_request_is_final: bool = False, missing: str | None = None) -> ItemPaged:
    """An ARM collection through the client's pipeline (auth, retries), paged by ``ItemPaged`` on ``next_key``.
    404: empty (``missing``: ``ResourceUnreadable`` with that message); 403: ``ResourceAccessDenied``; other
    errors raise for a retry."""

    def get_next(next_link: str | None):
        response = client.send_request(HttpRequest(method, next_link or first))
        if response.status_code == 404 and missing:
            raise ResourceUnreadable(missing)
        if response.status_code == 404:
            return None
        if response.status_code == 403:
            raise ResourceAccessDenied(f"{what} was refused (403)")
        if response.status_code == 400 and bad_request_is_final:
            raise ResourceUnreadable(f"{what} failed (400): {response.text()[:300]}")
        response.raise_for_status()
        return response

    def extract_data(response):
        if response is None:
            return None, iter([])
        body = response.json()
        return body.get(next_key) or None, iter(body.get("value") or [])

    return ItemPaged(get_next, extract_data)


class ArmResourceReader:
    def __init__(self, client_factory: Callable[[str], ResourceManagementClient],
                 network_factory: Callable[[str], Any] | None = None) -> None:
        """``client_factory(subscription_id)`` builds a client; one is kept per subscription.

        ``network_factory(subscription_id)`` builds a ``NetworkManagementClient`` (for flow logs).
        """
        self._factory = client_factory
        self._network_factory = network_factory
        self._network_clients: dict[str, Any] = {}
        self._clients: dict[str, ResourceManagementClient] = {}
        self._api_versions: dict[str, str] = {}
        self._lock = threading.Lock()
        self.reads = 0

    def _client(self, subscription_id: str) -> ResourceManagementClient:
        key = subscription_id.lower()
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._factory(subscription_id)
            return self._clients[key]

    def api_version(self, resource_id: ResourceId) -> str:
        type_key = resource_id.resource_type.lower()
        cached = self._api_versions.get(type_key)
        if cached:
            return cached
        namespace, _, type_path = resource_id.resource_type.partition("/")
        try:
            provider = self._client(resource_id.subscription_id).providers.get(namespace)
        except ResourceNotFoundError:
            raise UnknownResourceType(f"resource provider {namespace} is unknown to ARM "
                                      f"(needed for {resource_id.resource_type})") from None
        found = {}
        for rt in provider.resource_types or []:
            found[f"{namespace}/{rt.resource_type}".lower()] = pick_api_version(list(rt.api_versions or []))
        with self._lock:
            for k, v in found.items():
                if v:
                    self._api_versions.setdefault(k, v)
        if not found.get(type_key):
            raise UnknownResourceType(f"provider {namespace} lists no api-version for type {resource_id.resource_type}")
        log.debug("api-version for %s: %s", resource_id.resource_type, found[type_key])
        return found[type_key]

    def get(self, resource_id: ResourceId) -> Mapping[str, Any] | None:
        api_version = self.api_version(resource_id)
        self.reads += 1
        try:
            resource = self._client(resource_id.subscription_id).resources.get_by_id(
                resource_id.value, api_version=api_version)
        except ResourceNotFoundError:
            log.info("%s no longer exists (404)", resource_id.value)
            return None
        except HttpResponseError as exc:
            if exc.status_code == 403:
                raise ResourceAccessDenied(f"reading {resource_id.value} was refused (403): {exc.message}") from exc
            raise
        return resource.as_dict()

    # ------------------------------------------------------------------ related resources
    def related(self, resource_id: ResourceId, resource: Mapping[str, Any], spec: RelatedSpec) -> list[dict]:
        """The resources ``spec`` names for ``resource`` (an empty list when there are none)."""
        if spec.ids_from is not None:
            found = []
            for text in spec.referenced_ids(resource):
                try:
                    target = parse_resource_id(text)
                except InvalidResourceId:
                    raise ResourceUnreadable(f"{resource_id.value} references {text!r}, not a resource id") from None
                item = self._get_flow_log(target) if target.resource_type.lower() == FLOW_LOG_TYPE else self.get(target)
                if item is not None:
                    found.append(dict(item))
            return found
        if spec.type.lower() == POLICY_STATES_TYPE.lower():
            return self.policy_states(resource_id)
        if spec.scope in ("resourceGroup", "subscription"):
            return self._related_elsewhere(resource_id, spec)
        if spec.type.lower().startswith(resource_id.resource_type.lower() + "/"):
            base = f"{resource_id.value}/{spec.type[len(resource_id.resource_type) + 1:]}"
        else:
            base = f"{resource_id.value}/providers/{spec.type}"
        if spec.name:
            item = self.get(parse_resource_id(f"{base}/{spec.name}"))
            return [dict(item)] if item is not None else []
        return list(self._list(resource_id, base))

    def _related_elsewhere(self, resource_id: ResourceId, spec: RelatedSpec) -> list[dict]:
        """Resources of ``spec.type`` in a resource group (the resource's own unless named) or the subscription."""
        namespace, _, type_path = spec.type.partition("/")
        types = [t for t in type_path.split("/") if t]
        group = spec.resource_group or resource_id.resource_group
        if spec.scope == "resourceGroup" and not group:
            raise ResourceUnreadable(f"{resource_id.value} is in no resource group: cannot look for {spec.type}")
        prefix = (f"/subscriptions/{resource_id.subscription_id}"
                  + (f"/resourceGroups/{group}" if spec.scope == "resourceGroup" else ""))
        names = [n for n in (spec.name or "").split("/") if n]
        if spec.scope == "resourceGroup" and names and len(names) == len(types):
            path = "/".join(f"{t}/{n}" for t, n in zip(types, names))
            try:
                target = parse_resource_id(f"{prefix}/providers/{namespace}/{path}")
            except InvalidResourceId:
                raise ResourceUnreadable(f"related {spec.type} named {spec.name!r} is not a valid resource id") from None
            item = self.get(target)
            return [dict(item)] if item is not None else []
        if len(types) != 1:
            raise ResourceUnreadable(f"cannot list {spec.type} in {prefix} without the parent's name")
        found = list(self._list(resource_id, f"{prefix}/providers/{namespace}/{types[0]}"))
        if names:
            wanted = names[-1].lower()
            found = [r for r in found if str(r.get("name", "")).lower() == wanted]
        return found

    def _list(self, owner: ResourceId, collection: str) -> Iterator[dict]:
        api_version = self.api_version(parse_resource_id(f"{collection}/_"))
        client = self._client(owner.subscription_id)
        self.reads += 1

        return iter(_paged(client, "GET", f"{collection}?api-version={api_version}", "nextLink",
                           f"listing {collection}"))

    POLICY_INSIGHTS_API = "2019-10-01"

    def policy_states(self, resource_id: ResourceId) -> list[dict]:
        """Azure Policy's latest compliance states of the resource (every assignment and definition), from
        ``POST {id}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults`` over the last
        ``STATES_WINDOW_DAYS`` days; a 403 is ``ResourceAccessDenied`` (the identity needs Reader)."""
        client = self._client(resource_id.subscription_id)
        since = (datetime.now(timezone.utc) - timedelta(days=STATES_WINDOW_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")
        first = (f"{resource_id.value}/providers/{POLICY_STATES_TYPE}/latest/queryResults"
                 f"?api-version={self.POLICY_INSIGHTS_API}&$from={since}")
        self.reads += 1
        # a 400 is a query PolicyInsights can never answer: unreadable, not retried
        return list(_paged(client, "POST", first, "@odata.nextLink",
                           f"reading Azure Policy states of {resource_id.value}", bad_request_is_final=True))

    def _get_flow_log(self, target: ResourceId) -> Mapping[str, Any] | None:
        if self._network_factory is None:
            return self.get(target)
        key = target.subscription_id.lower()
        with self._lock:
            if key not in self._network_clients:
                self._network_clients[key] = self._network_factory(target.subscription_id)
            client = self._network_clients[key]
        watcher, _, name = target.name.partition("/")
        self.reads += 1
        try:
            return client.flow_logs.get(target.resource_group, watcher, name).as_dict()
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            if exc.status_code == 403:
                raise ResourceAccessDenied(f"reading {target.value} was refused (403): {exc.message}") from exc
            raise


class ArmAliasSource:
    """Resolves Azure Policy aliases the alias table lacks from ARM provider metadata.

    ``providers.get_at_tenant_scope(namespace, expand="resourceTypes/aliases")`` is
    read once per namespace and cached; an alias ARM does not list resolves to None.
    """

    def __init__(self, client: ResourceManagementClient) -> None:
        self._client = client
        self._by_namespace: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def __call__(self, alias: str) -> str | None:
        from ..policy import RuleError

        namespace = alias.split("/", 1)[0].lower()
        with self._lock:
            if namespace not in self._by_namespace:
                try:
                    provider = self._client.providers.get_at_tenant_scope(
                        alias.split("/", 1)[0], expand="resourceTypes/aliases")
                except ResourceNotFoundError:
                    self._by_namespace[namespace] = {}
                except HttpResponseError as exc:
                    raise RuleError(f"alias {alias!r} cannot be resolved: reading provider metadata failed: "
                                    f"{exc.message}") from None
                else:
                    table: dict[str, str] = {}
                    for rt in provider.resource_types or []:
                        for entry in rt.aliases or []:
                            path = entry.default_path or next((p.path for p in entry.paths or [] if p.path), None)
                            if entry.name and path:
                                table[entry.name.lower()] = path
                    self._by_namespace[namespace] = table
                    log.info("resolved %d aliases of %s from ARM", len(table), namespace)
            return self._by_namespace[namespace].get(alias.lower())

    def all_aliases(self, progress: Callable[[int], None] | None = None) -> list[tuple[str, str]]:
        """Every alias of every provider (``providers.list_at_tenant_scope``, paged by the SDK), as
        ``(alias, path)`` rows: the default path first, then the other paths, each once."""
        rows: list[tuple[str, str]] = []
        for count, provider in enumerate(self._client.providers.list_at_tenant_scope(expand="resourceTypes/aliases"), 1):
            for rt in provider.resource_types or []:
                for entry in rt.aliases or []:
                    if not entry.name:
                        continue
                    paths = [entry.default_path] if entry.default_path else []
                    paths += [p.path for p in entry.paths or [] if p.path and p.path not in paths]
                    rows.extend((entry.name, path) for path in paths)
            if progress is not None and count % 25 == 0:
                progress(count)
        return rows


class ArmPolicyDefinitions:
    """Reads policy definitions by id from ARM (initiative members not available offline).

    ``resources.get_by_id`` on ``/providers/Microsoft.Authorization/policyDefinitions/{name}``
    (or a management-group or subscription one); 404 means there is no such definition.
    """

    API_VERSION = "2023-04-01"

    def __init__(self, client: ResourceManagementClient) -> None:
        self._client = client

    def __call__(self, definition_id: str) -> dict | None:
        try:
            found = self._client.resources.get_by_id(definition_id, api_version=self.API_VERSION)
        except ResourceNotFoundError:
            return None
        body = found.as_dict()
        body.setdefault("id", definition_id)
        return body


class ArmPolicyAssignments:
    """A subscription's Azure Policy assignments and exemptions, as ARM lists them.

    The unfiltered list of a subscription holds what applies to it: assignments (and exemptions)
    at the subscription, at its resource groups and resources, and at the management groups above
    it. The Reader role covers these reads. Paged by ``nextLink``; 403 raises ``ResourceAccessDenied``.
    """

    ASSIGNMENTS_API = "2023-04-01"
    EXEMPTIONS_API = "2022-07-01-preview"

    def __init__(self, client: ResourceManagementClient) -> None:
        self._client = client

    def _list(self, subscription_id: str, kind: str, api_version: str) -> list[dict]:
        first = (f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/{kind}"
                 f"?api-version={api_version}")
        return list(_paged(self._client, "GET", first, "nextLink", f"listing {kind} of subscription {subscription_id}"))

    def assignments(self, subscription_id: str) -> list[dict]:
        return self._list(subscription_id, "policyAssignments", self.ASSIGNMENTS_API)

    def exemptions(self, subscription_id: str) -> list[dict]:
        return self._list(subscription_id, "policyExemptions", self.EXEMPTIONS_API)


class ArmPolicyStates:
    """Azure Policy's latest compliance states of a whole subscription (for parity): ``POST
    /subscriptions/{id}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults`` over the last
    ``STATES_WINDOW_DAYS`` days, paged by ``@odata.nextLink``. The Reader role covers it; 403 raises
    ``ResourceAccessDenied``."""

    API_VERSION = ArmResourceReader.POLICY_INSIGHTS_API

    def __init__(self, client: ResourceManagementClient, clock: Callable[[], datetime] | None = None) -> None:
        self._client = client
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    def latest(self, subscription_id: str) -> Iterator[dict]:
        since = (self._clock() - timedelta(days=STATES_WINDOW_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")
        first = (f"/subscriptions/{subscription_id}/providers/{POLICY_STATES_TYPE}/latest/queryResults"
                 f"?api-version={self.API_VERSION}&$from={since}")
        return iter(_paged(self._client, "POST", first, "@odata.nextLink",
                           f"reading Azure Policy states of subscription {subscription_id}", bad_request_is_final=True))


class ArmManagementGroups:
    """The subscriptions below a management group: "Management Groups - Get Descendants" (``GET
    /providers/Microsoft.Management/managementGroups/{groupId}/descendants``), paged by ``nextLink``; every
    level below the group, subscriptions typed ``/subscriptions``. Reader on the group covers it; 403 raises
    ``ResourceAccessDenied``, 404 (no such group) ``ResourceUnreadable``."""

    API_VERSION = "2020-05-01"
    SUBSCRIPTION_TYPE = "/subscriptions"

    def __init__(self, client: ResourceManagementClient) -> None:
        self._client = client

    def subscriptions_below(self, group_id: str) -> list[str]:
        group = quote(group_id, safe="()")
        first = f"/providers/Microsoft.Management/managementGroups/{group}/descendants?api-version={self.API_VERSION}"
        found = []
        for item in _paged(self._client, "GET", first, "nextLink",
                           f"listing the descendants of management group {group_id} (Reader on the group is needed)",
                           missing=f"management group {group_id!r} does not exist (404): check MONITORED_SCOPES"):
            if not isinstance(item, dict) or str(item.get("type", "")).lower() != self.SUBSCRIPTION_TYPE:
                continue  # a management group below: its subscriptions are listed too
            name = item.get("name") or str(item.get("id", "")).rstrip("/").rsplit("/", 1)[-1]
            if isinstance(name, str) and name:
                found.append(name.lower())
        return found
