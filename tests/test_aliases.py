"""The alias snapshot: Azure's alias data shipped with the monitor, read lazily, indexed by namespace."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from shared.policy.aliases import SNAPSHOT, AliasSnapshot, AliasSnapshotError, chain, write_snapshot
from shared.catalog import ControlLoadError, load_catalog


def test_shipped_snapshot_has_azures_aliases_with_licence_and_provenance():
    snapshot = AliasSnapshot()
    assert snapshot.get("Microsoft.Web/sites/config/web.linuxFxVersion") == "properties.linuxFxVersion"
    assert snapshot.get("microsoft.storage/STORAGEACCOUNTS/allowBlobPublicAccess") == "properties.allowBlobPublicAccess"
    assert snapshot.get("Microsoft.Network/networkSecurityGroups/securityRules[*].destinationPortRange") == \
        "properties.securityRules[*].properties.destinationPortRange"
    assert snapshot.get("Microsoft.Storage/storageAccounts/noSuchThing") is None
    assert snapshot.get("no-namespace") is None
    assert len(snapshot) == 65399  # rows: 65,383 aliases, a few with more than one path
    assert (SNAPSHOT.parent / "policy-aliases.LICENSE").read_text().startswith("MIT License")
    assert "Get-AzPolicyAlias" in (SNAPSHOT.parent / "README.md").read_text()


KIT_SNAPSHOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "policy-aliases.csv.gz"


@pytest.mark.skipif(not KIT_SNAPSHOT.exists(), reason="the original alias file is not beside the checkout")
def test_shipped_snapshot_holds_the_original_rows_unchanged():
    original = gzip.decompress(KIT_SNAPSHOT.read_bytes()).decode("utf-8").splitlines()
    snapshot = AliasSnapshot()
    shipped = [row for namespace in snapshot.namespaces() for row in snapshot._load().get(namespace)]
    assert sorted(shipped) == sorted(original)
    for namespace in snapshot.namespaces():  # within a namespace, the original order (first path first)
        mine = snapshot._load().get(namespace)
        assert mine == [r for r in original if r.split("/", 1)[0].lower() == namespace]


def test_snapshot_is_read_on_first_lookup_and_a_namespace_parsed_once(tmp_path):
    for name in ("a.csv.gz", "a.zip"):
        check_lazy(tmp_path / name)


def check_lazy(path):
    write_snapshot([("Microsoft.Compute/licenseType", "properties.licenseType"),
                    ("Microsoft.Compute/licenseType", "properties.virtualMachineProfile.licenseType"),
                    ("Microsoft.Web/sites/httpsOnly", "properties.httpsOnly")], path)
    snapshot = AliasSnapshot(path)
    assert snapshot._chunks is None  # nothing read yet
    assert snapshot.get("Microsoft.Compute/licenseType") == "properties.licenseType"  # first path wins
    assert list(snapshot._tables) == ["microsoft.compute"]  # Microsoft.Web not parsed
    if path.suffix == ".zip":
        assert list(dict.items(snapshot._chunks)) == [("microsoft.compute", [
            "Microsoft.Compute/licenseType,properties.licenseType",
            "Microsoft.Compute/licenseType,properties.virtualMachineProfile.licenseType"])]  # one member read
    assert snapshot.namespaces() == ["microsoft.compute", "microsoft.web"]


@pytest.mark.parametrize("content, words", [
    (b"\x1f\x8b\x08broken", "cannot read the alias snapshot"),
    (b"PK\x03\x04broken", "cannot read the alias snapshot|not an 'alias,path' row"),
    (b"Microsoft.Web/sites/httpsOnly\n", "not an 'alias,path' row"),
    (b"just text\n", "not an 'alias,path' row"),
])
def test_broken_snapshot_is_an_error_naming_the_file(tmp_path, content, words):
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    with pytest.raises(AliasSnapshotError, match=words) as caught:
        AliasSnapshot(path).get("Microsoft.Web/sites/httpsOnly")
    assert str(path) in str(caught.value)


def test_catalog_load_with_a_broken_snapshot_names_it(tmp_path):
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(gzip.compress(b"garbage without a slash\n"))
    with pytest.raises(ControlLoadError, match="broken.csv.gz"):
        load_catalog(alias_snapshot=AliasSnapshot(path))


def test_write_snapshot_refuses_what_it_could_not_read_back(tmp_path):
    with pytest.raises(AliasSnapshotError, match="cannot be written"):
        write_snapshot([("Microsoft.X/y,z", "properties.a")], tmp_path / "x.csv")


def test_chain_asks_in_order_and_skips_missing_sources():
    asked = []
    first = lambda a: asked.append(("first", a)) or ("p.one" if a == "A/one" else None)  # noqa: E731
    second = lambda a: asked.append(("second", a)) or "p.any"  # noqa: E731
    resolve = chain(first, None, second)
    assert resolve("A/one") == "p.one" and resolve("A/two") == "p.any"
    assert asked == [("first", "A/one"), ("first", "A/two"), ("second", "A/two")]


def test_builtin_catalog_resolves_from_the_snapshot_not_a_hand_written_table():
    from shared.catalog import load_aliases

    assert len(load_aliases()) < 30  # only what the snapshot lacks
    catalog = load_catalog()
    assert len(catalog.controls) > 100
