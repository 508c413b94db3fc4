"""ResourceReader over Azure Resource Manager (``azure-mgmt-resource``).

``resources.get_by_id`` needs an api-version per resource type; it is resolved
from the provider's metadata (newest stable version, else newest preview) and
cached for the life of the process. A 404 means the resource is gone.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Mapping

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.resource.resources import ResourceManagementClient

from ..ports import ResourceAccessDenied, ResourceUnreadable
from ..resource_ids import ResourceId

log = logging.getLogger(__name__)


class UnknownResourceType(ResourceUnreadable, LookupError):
    """The provider does not list the resource type, so no api-version can be chosen."""


def pick_api_version(versions: list[str]) -> str | None:
    stable = sorted((v for v in versions if "preview" not in v.lower()), reverse=True)
    if stable:
        return stable[0]
    return sorted(versions, reverse=True)[0] if versions else None


class ArmResourceReader:
    def __init__(self, client_factory: Callable[[str], ResourceManagementClient]) -> None:
        """``client_factory(subscription_id)`` builds a client; one is kept per subscription."""
        self._factory = client_factory
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
