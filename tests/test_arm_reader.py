"""ArmResourceReader with the real azure-mgmt-resource client against a local ARM over real HTTPS."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.mgmt.resource.resources import ResourceManagementClient

from shared import bootstrap
from shared.adapters.arm import ArmResourceReader, UnknownResourceType
from shared.config import Settings
from shared.service.ports import ResourceAccessDenied
from shared.domain.resource_ids import parse_resource_id
from tests.support.local_azure import OTHER_CREDENTIAL_SETTINGS, LocalAzure, StaticToken

RESOURCES = Path(__file__).with_name("fixtures") / "resources"
ARM_SCOPE = "https://management.azure.com/.default"
SUB = "7d2f4b1e-3c5a-4e8b-9f60-1a2b3c4d5e6f"
STORAGE = f"/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts"
VAULTS = f"/subscriptions/{SUB}/resourceGroups/rg-sec/providers/Microsoft.KeyVault/vaults"


def load(name: str) -> dict:
    return json.loads((RESOURCES / f"{name}.json").read_text())


def rid(text: str):
    return parse_resource_id(text)


@pytest.fixture
def local():
    with LocalAzure() as server:
        yield server


def make_reader(local: LocalAzure, credential=None, **client_kwargs) -> ArmResourceReader:
    """The reader as production builds it, with the real client pointed at the local ARM."""
    credential = credential or local.credential()

    def factory(subscription_id: str) -> ResourceManagementClient:
        return ResourceManagementClient(credential, subscription_id, base_url=local.url, credential_scopes=[ARM_SCOPE],
                                        connection_verify=local.ca_file, **client_kwargs)

    return ArmResourceReader(factory)


def provider_calls(local: LocalAzure, namespace: str) -> list:
    return [r for r in local.calls("arm") if r.path.lower().endswith(f"/providers/{namespace.lower()}")]


def resource_gets(local: LocalAzure, resource_id: str) -> list:
    return [r for r in local.calls("arm") if r.path.lower() == resource_id.lower()]


def test_get_returns_the_current_arm_object_as_stored(local):
    storage, nsg = load("storage-weak"), load("nsg-open")
    blob = {"id": storage["id"] + "/blobServices/default", "name": "default",
            "type": "Microsoft.Storage/storageAccounts/blobServices",
            "properties": {"deleteRetentionPolicy": {"enabled": False}, "isVersioningEnabled": False}}
    for resource in (storage, nsg, blob):
        local.put_resource(resource)
    reader = make_reader(local)

    assert reader.get(rid(storage["id"])) == storage
    assert reader.get(rid(storage["id"].upper())) == storage  # ARM ids are case-insensitive
    got = reader.get(rid(nsg["id"]))
    assert got == nsg  # etag and nested camelCase properties survive
    assert got["properties"]["securityRules"][0]["properties"]["destinationPortRange"]
    assert reader.get(rid(blob["id"])) == blob
    assert reader.reads == 4


def test_api_version_is_the_newest_stable_one_and_resolved_once_per_type(local):
    reader = make_reader(local)
    first, second = rid(f"{STORAGE}/stmissing01"), rid(f"{STORAGE}/stmissing02")

    assert reader.get(first) is None
    assert reader.get(second) is None
    mixed_case = rid(f"{STORAGE}/stmissing01".upper())
    assert reader.api_version(mixed_case) == "2023-05-01"  # 2024-01-01-preview is newer but a preview

    assert len(provider_calls(local, "Microsoft.Storage")) == 1
    gets = resource_gets(local, first.value) + resource_gets(local, second.value)
    assert [(g.query["api-version"], g.status) for g in gets] == [("2023-05-01", 404), ("2023-05-01", 404)]


@pytest.mark.parametrize("versions, expected", [
    (["2024-04-01-preview", "2023-07-01", "2023-02-01", "2022-07-01"], "2023-07-01"),
    (["2021-10-01", "2023-02-01", "2022-07-01"], "2023-02-01"),  # ARM's order is not a promise
    (["2024-04-01-preview", "2023-08-01-preview"], "2024-04-01-preview"),  # previews only: newest preview
])
def test_api_version_choice_follows_provider_metadata(local, versions, expected):
    local.set_provider("Microsoft.KeyVault", {"vaults": versions})
    reader = make_reader(local)
    vault = rid(f"{VAULTS}/kv-missing")

    assert reader.get(vault) is None  # the local ARM rejects any api-version the provider does not list
    assert [g.query["api-version"] for g in resource_gets(local, vault.value)] == [expected]


def test_a_child_type_resolves_its_own_api_version(local):
    local.set_provider("Microsoft.Storage", {
        "storageAccounts": ["2023-05-01", "2023-01-01"],
        "storageAccounts/blobServices": ["2023-04-01-preview", "2022-09-01", "2021-09-01"],
    })
    reader = make_reader(local)
    account = rid(f"{STORAGE}/stdata01")
    blob = rid(f"{STORAGE}/stdata01/blobServices/default")

    assert reader.api_version(blob) == "2022-09-01"
    assert reader.api_version(account) == "2023-05-01"
    assert reader.get(blob) is None
    assert len(provider_calls(local, "Microsoft.Storage")) == 1  # one metadata read serves every type
    assert [g.query["api-version"] for g in resource_gets(local, blob.value)] == ["2022-09-01"]


def test_a_deleted_resource_reads_as_none(local):
    storage = load("storage-hardened")
    local.put_resource(storage)
    local.remove_resource(storage["id"])
    reader = make_reader(local)

    assert reader.get(rid(storage["id"])) is None
    assert [g.status for g in resource_gets(local, storage["id"])] == [404]


def test_403_is_reported_as_access_denied(local):
    reader = make_reader(local)
    vault = rid(f"{VAULTS}/kv-locked")
    reader.api_version(vault)
    local.fail_next(1, status=403)

    with pytest.raises(ResourceAccessDenied, match="kv-locked.*403"):
        reader.get(vault)
    assert [g.status for g in resource_gets(local, vault.value)] == [403]


def test_transient_503s_are_retried_by_azure_core(local):
    reader = make_reader(local, retry_backoff_factor=0.01)
    vault = rid(f"{VAULTS}/kv-missing")

    local.fail_next(2, status=503)
    assert reader.api_version(vault) == "2023-07-01"
    assert [c.status for c in provider_calls(local, "Microsoft.KeyVault")] == [503, 503, 200]

    local.fail_next(2, status=503, retry_after=0)
    assert reader.get(vault) is None
    assert [g.status for g in resource_gets(local, vault.value)] == [503, 503, 404]


def test_an_outage_longer_than_the_retries_raises(local):
    """A transient failure must raise (Event Grid redelivers), never read as 'resource gone'."""
    reader = make_reader(local, retry_backoff_factor=0.01, retry_total=2)
    vault = rid(f"{VAULTS}/kv-missing")
    reader.api_version(vault)
    local.fail_next(10, status=503)

    with pytest.raises(HttpResponseError) as caught:
        reader.get(vault)
    assert caught.value.status_code == 503
    assert len(resource_gets(local, vault.value)) == 3


def test_a_type_the_provider_does_not_list_is_unknown(local):
    reader = make_reader(local)
    with pytest.raises(UnknownResourceType, match="Microsoft.Storage/fooBars"):
        reader.get(rid(f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/fooBars/x"))
    assert not [r for r in local.calls("arm") if "fooBars" in r.path]  # no resource read was attempted


def test_the_local_arm_refuses_a_wrong_token(local):
    reader = make_reader(local, credential=StaticToken("not-the-issued-token"))
    with pytest.raises(ClientAuthenticationError):
        reader.api_version(rid(f"{VAULTS}/kv-any"))
    assert [r.status for r in local.calls("arm")] == [401]


@pytest.fixture
def managed_identity_env(local, monkeypatch):
    """The process environment of a function app with a system-assigned identity, pointed at ``local``."""
    for name in OTHER_CREDENTIAL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in local.env().items():
        monkeypatch.setenv(name, value)
    bootstrap.override(None)  # forget credentials cached by earlier tests
    yield
    bootstrap.override(None)


def test_default_azure_credential_gets_its_token_from_the_managed_identity_endpoint(local, managed_identity_env):
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()
    reader = make_reader(local, credential=credential)
    try:
        assert reader.api_version(rid(f"{VAULTS}/kv-any")) == "2023-07-01"
        assert reader.get(rid(f"{VAULTS}/kv-missing")) is None
    finally:
        credential.close()

    tokens = local.calls("identity")
    assert [(t.status, t.query["resource"]) for t in tokens] == [(200, "https://management.azure.com")]
    assert [r.status for r in local.calls("arm")] == [200, 404]  # both carried the issued token


def test_bootstrap_reader_reaches_arm_endpoint_with_managed_identity(local, managed_identity_env):
    """The production wiring: ARM_ENDPOINT, REQUESTS_CA_BUNDLE and DefaultAzureCredential from the environment."""
    reader = bootstrap.build_reader(Settings.from_env())

    assert reader.get(rid(f"{STORAGE}/stmissing")) is None
    assert [r.status for r in local.calls("arm")] == [200, 404]
    assert [t.query["resource"] for t in local.calls("identity")] == ["https://management.azure.com"]
