"""ResourceGraphLister with the real azure-mgmt-resourcegraph client against a local Resource Graph over real HTTPS.

[GRAPH-QUOTA] "Guidance for throttled requests in Azure Resource Graph"
              (https://learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests):
              every reply carries x-ms-user-quota-remaining and x-ms-user-quota-resets-after; a client should
              wait for the reset when none is left rather than be throttled.
"""
from __future__ import annotations

import logging
import time
import uuid

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest

from shared.adapters.resource_graph import COLUMNS, GraphPage, IncompleteListing, ResourceGraphLister, quota_wait
from shared.service.ports import ResourceAccessDenied
from tests.support.local_azure import GRAPH_MAX_SUBSCRIPTIONS, LocalAzure, graph_row

ARM_SCOPE = "https://management.azure.com/.default"
SUB_A = "7d2f4b1e-3c5a-4e8b-9f60-1a2b3c4d5e6f"
SUB_B = "0b6a2c1d-9e8f-4a7b-8c6d-5e4f3a2b1c0d"
SUB_OTHER = "e1e1e1e1-2f2f-4a4a-8b8b-9c9c9c9c9c9c"  # holds resources too, never asked for
STORAGE, VAULT = "Microsoft.Storage/storageAccounts", "Microsoft.KeyVault/vaults"
NSG = "Microsoft.Network/networkSecurityGroups"
TYPES = [STORAGE, VAULT, NSG]
RG_TYPE = "Microsoft.Resources/resourceGroups"


def arm_object(sub: str, rtype: str, i: int) -> dict:
    """A resource as ARM GET returns it (no etag/systemData: Graph does not project them)."""
    name = f"{rtype.rsplit('/', 1)[1].lower()[:8]}{i:05d}"
    resource = {"id": f"/subscriptions/{sub}/resourceGroups/rg-{i % 7}/providers/{rtype}/{name}", "name": name,
                "type": rtype, "location": "westeurope", "properties": {"provisioningState": "Succeeded"}}
    if rtype == STORAGE:
        resource.update(kind="StorageV2", sku={"name": "Standard_LRS", "tier": "Standard"},
                        properties={"minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": i % 2 == 0})
    if i % 3 == 0:
        resource["tags"] = {"owner": f"team-{i % 4}"}
    if rtype == VAULT and i % 5 == 0:
        resource["identity"] = {"type": "SystemAssigned", "principalId": str(uuid.UUID(int=i))}
    return resource


def resource_group(sub: str, name: str) -> dict:
    return {"id": f"/subscriptions/{sub}/resourceGroups/{name}", "name": name, "type": RG_TYPE,
            "location": "northeurope", "tags": {"team": "payments"}, "properties": {"provisioningState": "Succeeded"}}


# 2,500 resources of the three types across SUB_A and SUB_B, plus noise the filters must keep out.
ESTATE = [arm_object((SUB_A, SUB_B)[i % 2], TYPES[i % 3], i) for i in range(2500)]
NOISE = ([arm_object(SUB_OTHER, STORAGE, i) for i in range(40)]
         + [arm_object(SUB_A, "Microsoft.Web/sites", i) for i in range(30)])
GROUPS = [resource_group(sub, f"rg-{i}") for sub in (SUB_A, SUB_B, SUB_OTHER) for i in range(7)]


def by_id(resources: list[dict]) -> list[dict]:
    return sorted(resources, key=lambda r: r["id"])


@pytest.fixture
def local():
    with LocalAzure() as server:
        server.graph_resources = [graph_row(r) for r in ESTATE + NOISE + GROUPS]
        yield server


def make_lister(local: LocalAzure, page_size: int = 1000) -> ResourceGraphLister:
    return ResourceGraphLister(client(local), page_size)


def client(local: LocalAzure) -> ResourceGraphClient:
    return ResourceGraphClient(local.credential(), base_url=local.url, credential_scopes=[ARM_SCOPE],
                               connection_verify=local.ca_file, retry_backoff_factor=0.01)


def rows(pages: list[GraphPage]) -> list[dict]:
    return [r for page in pages for r in page.resources]


def test_pages_of_1000_cover_every_resource_once_in_id_order_in_arm_shape(local, caplog):
    caplog.set_level(logging.INFO, logger="shared.adapters.resource_graph")
    pages = list(make_lister(local).pages([SUB_A, SUB_B], TYPES))

    assert [(len(p.resources), p.number) for p in pages] == [(1000, 1), (1000, 2), (500, 3)]
    assert [p.skip_token is None for p in pages] == [False, False, True]
    assert rows(pages) == by_id(ESTATE)  # exactly once, id order, and each row equals its ARM GET object
    calls = local.calls("graph")
    assert [(c.method, c.query["api-version"], c.status) for c in calls] == [("POST", "2021-03-01", 200)] * 3
    first = calls[0].body
    assert first["subscriptions"] == sorted([SUB_A, SUB_B])
    assert first["query"] == (f"Resources | where type in~ ('{STORAGE}', '{VAULT}', '{NSG}') "
                              f"| project {COLUMNS} | order by id asc")
    assert first["options"]["$top"] == 1000 and first["options"]["resultFormat"] == "objectArray"
    assert "$skipToken" not in first["options"]
    assert all(c.body["options"]["$skipToken"] for c in calls[1:])  # Graph's token followed, not $skip
    progress = [r.getMessage() for r in caplog.records if r.name == "shared.adapters.resource_graph"]
    assert progress == ["Resource Graph page 1: 1000 rows, 1000 so far",
                        "Resource Graph page 2: 1000 rows, 2000 so far",
                        "Resource Graph page 3: 500 rows, 2500 so far (last)"]


def test_rows_drop_graph_columns_and_empty_values_and_keep_the_callers_type_spelling(local):
    local.graph_resources = [graph_row(ESTATE[1])]  # a vault: no kind, Graph reports kind ""
    [page] = make_lister(local).pages([SUB_B], ["MICROSOFT.KEYVAULT/VAULTS"])

    [row] = page.resources
    assert local.graph_resources[0]["kind"] == "" and local.graph_resources[0]["type"] == VAULT.lower()
    assert "kind" not in row and "resourceGroup" not in row and "subscriptionId" not in row and "sku" not in row
    assert row == {**ESTATE[1], "type": "MICROSOFT.KEYVAULT/VAULTS"}


def test_resuming_from_a_skip_token_gives_exactly_the_rest(local):
    lister = make_lister(local)
    first, second, third = lister.pages([SUB_A, SUB_B], TYPES)
    local.requests.clear()

    rest = list(lister.pages([SUB_A, SUB_B], TYPES, skip_token=first.skip_token))
    assert [p.number for p in rest] == [2, 3]
    assert rows(rest) == second.resources + third.resources
    assert len(local.calls("graph")) == 2  # the first page is not read again

    [last] = lister.pages([SUB_B, SUB_A], list(reversed(TYPES)), skip_token=second.skip_token)  # same listing
    assert last == third


@pytest.mark.parametrize("subscriptions, types", [([SUB_A], TYPES), ([SUB_A, SUB_B], TYPES[:2])])
def test_a_token_resumes_only_the_listing_it_came_from(local, subscriptions, types):
    lister = make_lister(local)
    token = next(iter(lister.pages([SUB_A, SUB_B], TYPES))).skip_token
    local.requests.clear()

    with pytest.raises(ValueError, match="other subscriptions or types"):
        lister.pages(subscriptions, types, skip_token=token)
    with pytest.raises(ValueError, match="not one ResourceGraphLister issued"):
        lister.pages([SUB_A, SUB_B], TYPES, skip_token="not-a-token")
    assert local.calls("graph") == []


def test_subscription_and_type_filters(local):
    lister = make_lister(local)

    only_a = rows(lister.pages([SUB_A], TYPES))
    assert only_a == by_id([r for r in ESTATE if f"/{SUB_A}/" in r["id"]])

    vaults = rows(lister.pages([SUB_A, SUB_B, SUB_OTHER], ["microsoft.keyvault/vaults"]))  # in~: any case
    assert vaults == by_id([{**r, "type": "microsoft.keyvault/vaults"} for r in ESTATE if r["type"] == VAULT])

    sites = rows(lister.pages([SUB_A], ["Microsoft.Web/sites"]))
    assert sites == by_id(NOISE[40:])


def test_resource_groups_come_from_resource_containers_when_asked(local):
    pages = list(make_lister(local, page_size=300).pages([SUB_A], [STORAGE, RG_TYPE]))

    storage = by_id([r for r in ESTATE if r["type"] == STORAGE and f"/{SUB_A}/" in r["id"]])
    groups = by_id([g for g in GROUPS if f"/{SUB_A}/" in g["id"]])
    assert rows(pages) == storage + groups  # resources first, then groups, each in id order, in ARM shape
    assert pages[-1].resources == groups and pages[-1].skip_token is None
    queries = [c.body["query"] for c in local.calls("graph")]
    assert queries[-1] == ("ResourceContainers | where type =~ 'microsoft.resources/subscriptions/resourcegroups' "
                           f"| project {COLUMNS} | order by id asc")
    assert all(q.startswith(f"Resources | where type in~ ('{STORAGE}')") for q in queries[:-1])

    lister = make_lister(local, page_size=300)
    resumed = list(lister.pages([SUB_A], [STORAGE, RG_TYPE], skip_token=pages[-2].skip_token))
    assert resumed == [pages[-1]]  # a token at the end of one query resumes at the start of the next

    only_groups = rows(make_lister(local).pages([SUB_B], [RG_TYPE]))
    assert only_groups == by_id([g for g in GROUPS if f"/{SUB_B}/" in g["id"]])
    assert "ResourceContainers" in local.calls("graph")[-1].body["query"]


def test_every_type_when_none_is_given_and_the_last_page_may_be_empty(local):
    everything = rows(make_lister(local).pages([SUB_A], None))
    resources = [{**r, "type": r["type"].lower()} for r in ESTATE + NOISE if f"/{SUB_A}/" in r["id"]]
    groups = [g for g in GROUPS if f"/{SUB_A}/" in g["id"]]
    assert everything == by_id(resources) + by_id(groups)  # Graph's spelling of types when none are given

    local.graph_resources = [graph_row(r) for r in ESTATE]  # no resource groups at all
    pages = list(make_lister(local).pages([SUB_B], [VAULT, RG_TYPE]))
    assert [(len(p.resources), p.skip_token is None) for p in pages] == [(417, False), (0, True)]

    local.requests.clear()
    assert list(make_lister(local).pages([], TYPES)) == [GraphPage([], None, 1)]  # never a tenant-wide query
    assert list(make_lister(local).pages([SUB_A], [])) == [GraphPage([], None, 1)]
    assert local.requests == []


def test_a_429_with_retry_after_is_retried_by_azure_core(local):
    local.fail_next(1, status=429, retry_after=0.5, target="graph")
    started = time.monotonic()

    pages = list(make_lister(local).pages([SUB_A, SUB_B], TYPES))
    assert time.monotonic() - started >= 0.5  # Retry-After honoured, not the 0.01 s backoff
    assert rows(pages) == by_id(ESTATE)
    assert [c.status for c in local.calls("graph")] == [429, 200, 200, 200]


@pytest.mark.parametrize("remaining, resets, wait", [
    ("0", "00:00:03", 3.0), ("0", "00:00:04.5", 4.5), ("7", "00:00:03", 0.0), (None, None, 0.0),
    ("0", "01:00:00", 60.0), ("0", "soon", 0.0), ("many", "00:00:03", 0.0)])
def test_the_quota_headers_say_how_long_to_wait(remaining, resets, wait):
    """[GRAPH-QUOTA] "Guidance for throttled requests in Azure Resource Graph": x-ms-user-quota-remaining and
    x-ms-user-quota-resets-after (hh:mm:ss); a long or unreadable header neither stalls nor breaks a listing."""
    headers = {k: v for k, v in (("x-ms-user-quota-remaining", remaining),
                                 ("x-ms-user-quota-resets-after", resets)) if v is not None}
    assert quota_wait(headers) == wait


def test_a_listing_waits_for_the_quota_window_instead_of_being_throttled(local):
    """[GRAPH-QUOTA] 3 requests per 0.4 s window, a listing of 10 pages: it waits for each reset the headers
    announce, so no request is refused with 429 and the whole listing arrives."""
    local.graph_quota = (3, 0.4)
    lister = make_lister(local, page_size=300)
    rows = [r for page in lister.pages([SUB_A, SUB_B], TYPES) for r in page.resources]
    assert len(rows) == 2500
    calls = local.calls("graph")
    assert len(calls) == 9 and all(c.status == 200 for c in calls), [c.status for c in calls]
    assert len(lister.quota_waits) >= 2 and all(0 < w <= 0.4 + 0.2 for w in lister.quota_waits)


def test_403_is_reported_as_access_denied_naming_the_subscriptions(local):
    local.fail_next(1, status=403, target="graph", code="AuthorizationFailed")

    with pytest.raises(ResourceAccessDenied, match=f"{SUB_B}, {SUB_A}.*403"):
        list(make_lister(local).pages([SUB_A, SUB_B], TYPES))


@pytest.mark.parametrize("bad", [
    "Microsoft.Storage", "storageAccounts", "Microsoft.Storage/", "Microsoft.Storage//blobServices",
    "Microsoft.Storage/storageAccounts') | union (Resources", "Microsoft.Storage/storage Accounts",
    "Microsoft.Storage/storageAccounts\n| take 1", "Micro'soft/x", "",
])
def test_a_bad_type_is_refused_before_any_request(local, bad):
    with pytest.raises(ValueError, match="resource type .* is not of the form Namespace/type"):
        make_lister(local).pages([SUB_A], [STORAGE, bad])
    assert local.requests == []


def test_more_than_1000_subscriptions_are_chunked(local):
    # Sorted, SUB_B ("0b...") lands in the second chunk and SUB_A ("7d...") in the third.
    many = [f"0a{i:06x}-0000-4000-8000-000000000000" for i in range(1500)] + [SUB_B] \
        + [f"5{i:07x}-0000-4000-8000-000000000000" for i in range(847)] + [SUB_A]

    pages = list(make_lister(local).pages(many, TYPES))
    found = rows(pages)
    assert all(p.resources for p in pages[:-1])  # the chunk without resources yields no empty page
    in_a, in_b = ([r for r in ESTATE if f"/{sub}/" in r["id"]] for sub in (SUB_A, SUB_B))
    assert found == by_id(in_b) + by_id(in_a)  # chunk by chunk, each chunk its own id-ordered query
    chunks = [tuple(c.body["subscriptions"]) for c in local.calls("graph") if "$skipToken" not in c.body["options"]]
    assert [len(c) for c in chunks] == [1000, 1000, 349]
    assert SUB_B in chunks[1] and SUB_A in chunks[2]
    assert sorted(s for c in chunks for s in c) == sorted(many)


def test_the_local_graph_refuses_more_than_1000_subscriptions_like_the_service(local):
    request = QueryRequest(subscriptions=[str(uuid.UUID(int=i)) for i in range(GRAPH_MAX_SUBSCRIPTIONS + 1)],
                           query="Resources | project id, name | order by id asc")
    with pytest.raises(HttpResponseError) as caught:
        client(local).resources(request)
    assert caught.value.status_code == 400


def test_a_truncated_result_without_skip_token_is_an_error_not_a_short_listing(local):
    """Graph answers a query it cannot page (e.g. one with ``take``) truncated, with no skip token."""
    local.graph_truncated = True
    with pytest.raises(IncompleteListing, match="1000 of 1250"):
        list(make_lister(local).pages([SUB_A], TYPES))
