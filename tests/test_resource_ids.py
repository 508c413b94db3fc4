"""shared.domain.resource_ids: parsing, case normalisation and the tracked parent of an ARM id."""
from __future__ import annotations

import pytest

from shared.domain.resource_ids import InvalidResourceId, parse_resource_id, tracked_resource

SUB = "7d2f4b1e-3c5a-4e8b-9f60-1a2b3c4d5e6f"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-data-prod"
SA = f"{RG}/providers/Microsoft.Storage/storageAccounts/stcontosoprod01"
SITE = f"{RG}/providers/Microsoft.Web/sites/app-portal"
SQL = f"{RG}/providers/Microsoft.Sql/servers/sql-contoso"
KV = f"{RG}/providers/Microsoft.KeyVault/vaults/kv-contoso-prod"
DIAG = "providers/Microsoft.Insights/diagnosticSettings/send-to-law"
RA = "providers/Microsoft.Authorization/roleAssignments/0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"

def row(text, rtype, name, tracked, value=None, group="rg-data-prod"):
    """One parse case; ``value`` (the normalised id) defaults to ``text``."""
    return text, value or text, group, rtype, name, tracked


ST, SQLDB = "Microsoft.Storage/storageAccounts", "Microsoft.Sql/servers/databases"
ROLE = "Microsoft.Authorization/roleAssignments"
RA_NAME = RA.rsplit("/", 1)[1]

# A child's name is its ARM full name: the names of its parents and its own, joined by '/'.
PARSE_CASES = {
    "tracked resource": row(SA, ST, "stcontosoprod01", SA),
    "lower-case resourcegroups": row(SA.replace("resourceGroups", "resourcegroups"), ST, "stcontosoprod01", SA,
                                     value=SA),
    "upper-case fixed words": row(SA.replace("subscriptions", "SUBSCRIPTIONS")
                                  .replace("resourceGroups", "RESOURCEGROUPS").replace("providers", "Providers"),
                                  ST, "stcontosoprod01", SA, value=SA),
    "surrounding space and slash": row(f"  {SA}/ ", ST, "stcontosoprod01", SA, value=SA),
    "child: blob service": row(f"{SA}/blobServices/default", f"{ST}/blobServices", "stcontosoprod01/default", SA),
    "grandchild: container": row(f"{SA}/blobServices/default/containers/logs", f"{ST}/blobServices/containers",
                                 "stcontosoprod01/default/logs", SA),
    "child: web config": row(f"{SITE}/config/web", "Microsoft.Web/sites/config", "app-portal/web", SITE),
    "tracked child: slot": row(f"{SITE}/slots/staging", "Microsoft.Web/sites/slots", "app-portal/staging",
                               f"{SITE}/slots/staging"),
    "child of tracked child: slot config": row(f"{SITE}/slots/staging/config/web", "Microsoft.Web/sites/slots/config",
                                               "app-portal/staging/web", f"{SITE}/slots/staging"),
    "tracked child: sql database": row(f"{SQL}/databases/sqldb-orders", SQLDB, "sql-contoso/sqldb-orders",
                                       f"{SQL}/databases/sqldb-orders"),
    "tracked child, other case": row(f"{SQL}/DATABASES/sqldb-orders", "Microsoft.Sql/servers/DATABASES",
                                     "sql-contoso/sqldb-orders", f"{SQL}/DATABASES/sqldb-orders"),
    "child of sql database": row(f"{SQL}/databases/sqldb-orders/transparentDataEncryption/current",
                                 f"{SQLDB}/transparentDataEncryption", "sql-contoso/sqldb-orders/current",
                                 f"{SQL}/databases/sqldb-orders"),
    "child of sql server: firewall rule": row(f"{SQL}/firewallRules/AllowAll", "Microsoft.Sql/servers/firewallRules",
                                              "sql-contoso/AllowAll", SQL),
    "extension: diagnostic settings": row(f"{KV}/{DIAG}", "Microsoft.Insights/diagnosticSettings", "send-to-law", KV),
    "extension of a child resource": row(f"{SA}/blobServices/default/{DIAG}", "Microsoft.Insights/diagnosticSettings",
                                         "send-to-law", SA),
    "role assignment on a resource": row(f"{SA}/{RA}", ROLE, RA_NAME, f"{SA}/{RA}"),
    "role assignment on a resource group": row(f"{RG}/{RA}", ROLE, RA_NAME, f"{RG}/{RA}"),
    "role assignment on a subscription": row(f"/subscriptions/{SUB}/{RA}", ROLE, RA_NAME, f"/subscriptions/{SUB}/{RA}",
                                             group=None),
    "resource group": row(RG.replace("resourceGroups", "resourcegroups"), "Microsoft.Resources/resourceGroups",
                          "rg-data-prod", RG, value=RG),
    "subscription": row(f"/subscriptions/{SUB}", "Microsoft.Resources/subscriptions", SUB, f"/subscriptions/{SUB}",
                        group=None),
    # A container may legally be called 'providers'; that name is not an extension marker.
    "container named providers": row(f"{SA}/blobServices/default/containers/providers",
                                     f"{ST}/blobServices/containers", "stcontosoprod01/default/providers", SA),
}


@pytest.mark.parametrize("text, value, group, rtype, name, tracked", PARSE_CASES.values(), ids=PARSE_CASES.keys())
def test_parse_and_track(text, value, group, rtype, name, tracked):
    rid = parse_resource_id(text)
    assert rid.value == value
    assert rid.subscription_id == SUB
    assert rid.resource_group == group
    assert rid.resource_type == rtype
    assert rid.name == name
    assert rid.key == value.lower()
    assert tracked_resource(rid).value == tracked


def test_namespace_is_the_provider_of_the_type():
    assert parse_resource_id(f"{KV}/{DIAG}").namespace == "Microsoft.Insights"
    assert parse_resource_id(f"{SA}/blobServices/default").namespace == "Microsoft.Storage"


def test_ids_differing_only_in_case_share_a_key():
    lower = parse_resource_id(SA.lower())
    upper = parse_resource_id(SA.upper())
    mixed = parse_resource_id(SA.replace("resourceGroups", "resourcegroups"))
    assert lower.key == upper.key == mixed.key == SA.lower()
    # names keep their case, fixed words take their canonical spelling
    assert upper.value == (f"/subscriptions/{SUB.upper()}/resourceGroups/RG-DATA-PROD"
                           "/providers/MICROSOFT.STORAGE/STORAGEACCOUNTS/STCONTOSOPROD01")
    assert "/resourceGroups/" in lower.value and "/resourcegroups/" not in lower.value


def test_tracked_resource_of_tracked_resource_is_itself():
    rid = parse_resource_id(SA)
    assert tracked_resource(rid) == rid


def test_tracked_parent_of_differently_cased_children_is_the_same_key():
    a = tracked_resource(parse_resource_id(f"{SA}/blobServices/default"))
    b = tracked_resource(parse_resource_id(f"{SA.lower()}/BLOBSERVICES/default"))
    assert a.key == b.key


INVALID = {
    "empty": ("", "non-empty string"),
    "blank": ("   ", "non-empty string"),
    "not a string": (42, "non-empty string"),
    "none": (None, "non-empty string"),
    "no leading slash": (f"subscriptions/{SUB}/resourceGroups/rg", "must start with '/subscriptions/'"),
    "not a subscription": ("/tenants/abc/providers/Microsoft.Foo/bars/x", "must start with '/subscriptions/{id}'"),
    "subscription without id": ("/subscriptions", "must start with '/subscriptions/{id}'"),
    "empty segment": (f"/subscriptions/{SUB}//resourceGroups/rg", "empty segment"),
    "resource group without name": (f"/subscriptions/{SUB}/resourceGroups", "names no resource group"),
    "type without name": (f"{RG}/providers/Microsoft.Storage/storageAccounts", "expected '/providers/"),
    "child type without name": (f"{SA}/blobServices", "type without a name"),
    "unknown segment": (f"/subscriptions/{SUB}/foo/bar", "expected '/providers/"),
    "control character": (f"{SA}\x00", "control characters"),
}


@pytest.mark.parametrize("text, reason", INVALID.values(), ids=INVALID.keys())
def test_invalid_ids_are_rejected_with_a_reason(text, reason):
    with pytest.raises(InvalidResourceId) as info:
        parse_resource_id(text)
    assert reason in str(info.value)
