"""Lists resources of given types with Azure Resource Graph (``azure-mgmt-resourcegraph``), page by page.

Reconciliation reads the whole estate through here; events stay on ARM (``arm.py``).

Queries. For each chunk of at most 1,000 subscriptions (Resource Graph's limit per
request), sorted so that a resumed listing chunks the same way, up to two paged queries run
one after the other:

* ``Resources | where type in~ (...) | project id, name, type, kind, location, tags, sku,
  identity, properties, resourceGroup, subscriptionId | order by id asc`` (no ``where``
  when ``resource_types`` is None);
* when ``Microsoft.Resources/resourceGroups`` is asked for (or ``resource_types`` is None),
  the same projection over ``ResourceContainers | where type =~
  'microsoft.resources/subscriptions/resourcegroups'``: Graph keeps resource groups
  there, not in ``Resources``. A second query rather than a ``union`` keeps each query
  plain and each result in id order.

Types are checked against ``Namespace/type[/child...]`` (letters, digits, dots) and refused
with ValueError otherwise, so a quoted type cannot end its KQL string literal; nothing else
from the caller reaches the query text (subscriptions travel in the request body).

Rows have the shape of an ARM GET: ``id``, ``name``, ``type``, ``location``, ``tags``,
``kind``, ``sku``, ``identity``, ``properties``. Graph lower-cases ``type``; it is given
back as the caller spelled it in ``resource_types`` (``Microsoft.Resources/resourceGroups``
for a resource group). Columns Graph fills with null or "" where ARM has no such key
(``kind`` mostly) are dropped, so ``exists`` conditions see what they would see on ARM.
The Graph-only columns ``resourceGroup`` and ``subscriptionId`` are dropped too (the id
carries both). Not projected, so absent: ``etag``, ``systemData``, ``plan``, ``zones``,
``managedBy``, ``extendedLocation``.

Paging. ``GraphPage.skip_token`` is this lister's own opaque token (the query it is in,
Graph's ``$skipToken`` inside it, the page number); ``pages(..., skip_token=...)``
resumes after that page. The last page, and only the last, has ``skip_token`` None; it
may be empty (a listing with nothing left still ends with one page), no other page is.
A token only resumes the listing it came from (same subscriptions and types, in any
order), else ValueError. Rows are in id order within one query (one subscription chunk,
one table), not across queries. Graph is eventually consistent and pages are read at
different moments: a resource missing from a listing is a hint, not proof of deletion.

Requests. Each query is the SDK's own ``QueryRequest`` body, sent by ``client.send_request`` through the
client's pipeline (auth, retries) to "Resources - Resources" (``POST
/providers/Microsoft.ResourceGraph/resources``, the api-version the SDK sends), and the reply is read
as JSON: the SDK's model deserialization walks every value of every row and cost about 0.5 s per page
of 1,000 rows here, more than the query itself (docs/SCALE.md).

Errors: 403 raises ``ResourceAccessDenied``; 429 and 5xx are retried by the client's
azure-core retry policy; any other status raises ``HttpResponseError``.

Quota. Resource Graph allows each user a number of requests per time window and says on every
reply how many are left (``x-ms-user-quota-remaining``) and when the window resets
(``x-ms-user-quota-resets-after``, ``hh:mm:ss``) ("Guidance for throttled requests in Azure
Resource Graph", https://learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests).
When none is left, the next query waits for the reset (at most ``MAX_QUOTA_WAIT``) instead of
being refused with 429: a listing of thousands of subscriptions spreads itself over the windows.
Headers that do not parse are ignored (the 429 retry still protects the service).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from azure.core.rest import HttpRequest
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

from ..service.ports import ResourceAccessDenied

MAX_PAGE_SIZE = 1000
API_VERSION = "2021-03-01"  # what azure-mgmt-resourcegraph 8.x sends for Resources - Resources
RESOURCES_PATH = f"/providers/Microsoft.ResourceGraph/resources?api-version={API_VERSION}"
MAX_SUBSCRIPTIONS_PER_REQUEST = 1000
RESOURCE_GROUP_TYPE = "Microsoft.Resources/resourceGroups"
GRAPH_RESOURCE_GROUP_TYPE = "microsoft.resources/subscriptions/resourcegroups"
COLUMNS = "id, name, type, kind, location, tags, sku, identity, properties, resourceGroup, subscriptionId"
GRAPH_ONLY_COLUMNS = ("resourceGroup", "subscriptionId")
_RESOURCE_GROUP_SPELLINGS = {RESOURCE_GROUP_TYPE.lower(), GRAPH_RESOURCE_GROUP_TYPE}
_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.]*(/[A-Za-z0-9]+)+")

log = logging.getLogger(__name__)


class IncompleteListing(RuntimeError):
    """Graph truncated a result it could not page (reconciliation must not act on a partial listing)."""


@dataclass(frozen=True)
class GraphPage:
    resources: list[dict]  # ARM-shaped rows, in id order within each query
    skip_token: str | None  # resumes after this page; None on the last page
    number: int  # 1-based, continued across a resume


@dataclass(frozen=True)
class _Query:
    subscriptions: list[str]
    kql: str


def _kql_string(resource_type: str) -> str:
    if not _TYPE.fullmatch(resource_type):
        raise ValueError(f"resource type {resource_type!r} is not of the form Namespace/type[/child]")
    return f"'{resource_type}'"  # the pattern admits no quote or backslash: nothing to escape


def _arm_shape(row: dict, type_names: dict[str, str]) -> dict:
    shaped = {k: v for k, v in row.items() if k not in GRAPH_ONLY_COLUMNS and v is not None and v != ""}
    graph_type = str(row.get("type", "")).lower()
    shaped["type"] = (RESOURCE_GROUP_TYPE if graph_type == GRAPH_RESOURCE_GROUP_TYPE
                      else type_names.get(graph_type, row.get("type")))
    return shaped


QUOTA_MARGIN = 0.1  # seconds added to a wait for the quota window
MAX_QUOTA_WAIT = 60.0  # seconds; a longer reset announced by a header is capped (the 429 retry remains)
_RESETS_AFTER = re.compile(r"(\d{1,2}):(\d{2}):(\d{2}(?:\.\d{1,7})?)")


def quota_wait(headers: Any) -> float:
    """Seconds to wait before the next query, from a reply's quota headers: 0 while requests are left."""
    remaining = (headers or {}).get("x-ms-user-quota-remaining")
    resets = (headers or {}).get("x-ms-user-quota-resets-after")
    try:
        if remaining is None or int(remaining) > 0:
            return 0.0
    except ValueError:
        return 0.0
    match = _RESETS_AFTER.fullmatch(str(resets or "").strip())
    if not match:
        return 0.0
    hours, minutes, seconds = int(match.group(1)), int(match.group(2)), float(match.group(3))
    return min(MAX_QUOTA_WAIT, hours * 3600 + minutes * 60 + seconds)


class ResourceGraphLister:
    def __init__(self, client: ResourceGraphClient, page_size: int = MAX_PAGE_SIZE,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self._client = client
        self._page_size = page_size
        self._sleep, self._clock = sleep, clock
        self._not_before = 0.0  # the quota window's reset, when the last reply left no request
        self.quota_waits: list[float] = []  # seconds waited for the quota (logs, benchmarks, tests)

    def pages(self, subscriptions: list[str], resource_types: list[str] | None,
              skip_token: str | None = None) -> Iterator[GraphPage]:
        """Pages of the resources of ``resource_types`` (None: every type) in ``subscriptions``.

        Arguments and the token are checked here, before any request is sent.
        """
        type_names: dict[str, str] = {}
        with_groups = resource_types is None
        for resource_type in resource_types or []:
            _kql_string(resource_type)
            if resource_type.lower() in _RESOURCE_GROUP_SPELLINGS:
                with_groups = True
            else:
                type_names.setdefault(resource_type.lower(), resource_type)
        kqls = []
        if resource_types is None or type_names:
            where = "" if resource_types is None else \
                f" | where type in~ ({', '.join(_kql_string(t) for t in type_names.values())})"
            kqls.append(f"Resources{where} | project {COLUMNS} | order by id asc")
        if with_groups:
            kqls.append(f"ResourceContainers | where type =~ '{GRAPH_RESOURCE_GROUP_TYPE}' "
                        f"| project {COLUMNS} | order by id asc")
        subs = sorted({s.lower() for s in subscriptions})
        plan = [_Query(subs[i:i + MAX_SUBSCRIPTIONS_PER_REQUEST], kql)
                for i in range(0, len(subs), MAX_SUBSCRIPTIONS_PER_REQUEST) for kql in kqls]
        scope = [subs, resource_types is None, sorted(type_names), with_groups]
        listing = hashlib.sha256(json.dumps(scope).encode()).hexdigest()[:16]
        start = _decode(skip_token, listing) if skip_token else {"query": 0, "graph": None, "page": 0, "rows": 0}
        return self._pages(plan, listing, type_names, start)

    def _pages(self, plan: list[_Query], listing: str, type_names: dict[str, str],
               start: dict[str, Any]) -> Iterator[GraphPage]:
        index, graph_token, number, total = start["query"], start["graph"], start["page"], start["rows"]
        while True:
            rows: list[dict] = []
            if index < len(plan):
                response = self._query(plan[index], graph_token)
                rows = [_arm_shape(row, type_names) for row in response.get("data") or []]
                graph_token = response.get("$skipToken") or None
                if graph_token is None:
                    index += 1
            last = index >= len(plan)
            if not rows and not last:
                continue  # an empty query, or an empty page inside one: nothing to hand out yet
            number, total = number + 1, total + len(rows)
            token = None if last else _encode(listing, index, graph_token, number, total)
            log.info("Resource Graph page %d: %d rows, %d so far%s", number, len(rows), total,
                     " (last)" if last else "")
            yield GraphPage(rows, token, number)
            if last:
                return

    def _query(self, query: _Query, graph_token: str | None) -> dict:
        request = QueryRequest(subscriptions=query.subscriptions, query=query.kql, options=QueryRequestOptions(
            top=self._page_size, skip_token=graph_token, result_format="objectArray"))
        wait = self._not_before - self._clock()
        if wait > 0:
            log.info("Resource Graph quota used up: waiting %.1f s for its window to reset", wait)
            self.quota_waits.append(wait)
            self._sleep(wait)

        # The generated client's documented way to send a request through its pipeline: ``_send_request`` in
        # azure-mgmt-resourcegraph 8 (its docstring's example), ``send_request`` in newer generations.
        send = getattr(self._client, "send_request", None) or self._client._send_request
        reply = send(HttpRequest("POST", RESOURCES_PATH, json=request.serialize()))
        # The margin covers a reset given in whole seconds and the clocks on both ends.
        pause = quota_wait(reply.headers)
        self._not_before = self._clock() + pause + (QUOTA_MARGIN if pause else 0.0)
        if reply.status_code == 403:
            shown = ", ".join(query.subscriptions[:10])
            more = f" and {len(query.subscriptions) - 10} more" if len(query.subscriptions) > 10 else ""
            raise ResourceAccessDenied(f"Resource Graph refused to list subscriptions {shown}{more} "
                                       f"(403): {reply.text()[:300]}")
        reply.raise_for_status()
        response = reply.json()
        if not isinstance(response, dict):
            raise IncompleteListing(f"Resource Graph answered with no result object: {reply.text()[:200]}")
        if str(response.get("resultTruncated") or "").lower() == "true" and not response.get("$skipToken"):
            raise IncompleteListing(f"Resource Graph truncated the result at {response.get('count')} of "
                                    f"{response.get('totalRecords')} rows and gave no skip token: {query.kql}")
        return response


def _encode(listing: str, index: int, graph_token: str | None, number: int, total: int) -> str:
    state = {"listing": listing, "query": index, "graph": graph_token, "page": number, "rows": total}
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def _decode(token: str, listing: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
        ok = isinstance(state, dict) and isinstance(state.get("query"), int) and isinstance(state.get("page"), int) \
            and isinstance(state.get("rows"), int) and isinstance(state.get("graph"), (str, type(None)))
    except (binascii.Error, UnicodeError, ValueError):
        ok = False
    if not ok:
        raise ValueError("skip token is not one ResourceGraphLister issued")
    if state.get("listing") != listing:
        raise ValueError("skip token belongs to a listing of other subscriptions or types")
    return state
