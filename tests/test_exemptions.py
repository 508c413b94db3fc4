"""Exemptions: Exempt is recorded (never hidden), expiry re-opens, the CLI, and the Table store on Azurite."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from shared.adapters.exemption_store import CachedExemptions, InMemoryExemptionStore, TableExemptionStore
from shared.adapters.memory import InMemoryStateStore, MemorySink, StaticResourceReader
from shared.domain.exemptions import InvalidExemption, new_exemption
from shared.service.changes import Dependencies, handle_change
from tests.conftest import pipeline_catalog
from tests.test_service import HARDENED, SA_ID, SUB, weak, write_event

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 4, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def world():
    store = InMemoryExemptionStore()
    deps = Dependencies(pipeline_catalog(), StaticResourceReader([HARDENED]), InMemoryStateStore(), MemorySink(),
                        clock=lambda: NOW, exemptions=CachedExemptions(store, ttl=timedelta(0)))
    deps.exemption_store = store
    return deps


def transitions(outcome):
    return [(f["Transition"], f["ControlId"], f["Status"]) for f in outcome.findings]


def test_exempted_finding_is_recorded_as_exempt_and_reopens_when_the_exemption_ends(world):
    world.reader.put(weak(allowBlobPublicAccess=True))
    opened = handle_change(write_event("x1"), world)
    assert transitions(opened) == [("New", "storage-no-public-blob-access", "NonCompliant")]
    exemption = new_exemption(f"/subscriptions/{SUB}/resourceGroups/rg-data", "public site assets, reviewed",
                              "ciso@contoso.com", NOW + timedelta(days=30), NOW,
                              control_id="storage-no-public-blob-access")
    world.exemption_store.add(exemption)
    exempted = handle_change(write_event("x2"), world)
    assert transitions(exempted) == [("Exempted", "storage-no-public-blob-access", "Exempt")]
    assert exempted.findings[0]["Evidence"][-1]["exemption"] == exemption.id
    assert exempted.findings[0]["DueDate"] == opened.findings[0]["DueDate"]  # the due time of what it closes
    state = world.store.load(exempted.change.resource)
    assert "public site assets" in state.controls["storage-no-public-blob-access"].note
    assert handle_change(write_event("x3"), world).findings == []  # still exempt: nothing new
    world.clock = lambda: NOW + timedelta(days=31)  # expired
    reopened = handle_change(write_event("x4"), world)
    assert transitions(reopened) == [("Reopened", "storage-no-public-blob-access", "NonCompliant")]


def test_exemption_is_scoped_to_its_control_and_scope(world):
    world.exemption_store.add(new_exemption(f"/subscriptions/{SUB}/resourceGroups/other-rg", "x", "y",
                                            NOW + timedelta(days=1), NOW))
    world.exemption_store.add(new_exemption(SA_ID, "tls exception for a legacy client", "y", NOW + timedelta(days=1),
                                            NOW, control_id="storage-min-tls-1-2"))
    world.reader.put(weak(allowBlobPublicAccess=True, minimumTlsVersion="TLS1_0"))
    got = {(t, c, s) for t, c, s in transitions(handle_change(write_event("s1"), world))}
    assert got == {("New", "storage-no-public-blob-access", "NonCompliant"),
                   ("Exempted", "storage-min-tls-1-2", "Exempt")}


def test_fixing_an_exempt_resource_resolves_it(world):
    world.exemption_store.add(new_exemption(f"/subscriptions/{SUB}", "whole subscription in migration", "y",
                                            NOW + timedelta(days=5), NOW))
    world.reader.put(weak(allowBlobPublicAccess=True))
    handle_change(write_event("f1"), world)
    world.reader.put(HARDENED)
    assert transitions(handle_change(write_event("f2"), world)) == [
        ("Resolved", "storage-no-public-blob-access", "Compliant")]


@pytest.mark.parametrize("kwargs, field", [
    ({"scope": "not-an-id"}, "scope"),
    ({"justification": " "}, "justification"),
    ({"requester": ""}, "requester"),
    ({"expires": NOW - timedelta(seconds=1)}, "expires"),
    ({"expires": NOW + timedelta(days=400)}, "expires"),
    ({"control_id": "no-such-control"}, "control"),
])
def test_bad_exemptions_name_the_field(kwargs, field):
    args = {"scope": f"/subscriptions/{SUB}", "justification": "j", "requester": "r",
            "expires": NOW + timedelta(days=1), "control_id": None, **kwargs}
    with pytest.raises(InvalidExemption, match=f"^{field}"):
        new_exemption(args["scope"], args["justification"], args["requester"], args["expires"], NOW,
                      control_id=args["control_id"], known_controls=["storage-https-only"])


def test_table_exemption_store_round_trips_on_azurite(table_client):
    store = TableExemptionStore(table_client)
    one = new_exemption(SA_ID, "legacy client", "ana@contoso.com", NOW + timedelta(days=3), NOW, "storage-min-tls-1-2")
    other = new_exemption("/subscriptions/ffffffff-0000-4000-8000-000000000000", "lab", "ben", NOW + timedelta(days=3),
                          NOW)
    store.add(one)
    store.add(other)
    assert store.for_subscription(SUB.upper()) == [one]
    assert {e.id for e in store.all()} == {one.id, other.id}
    assert store.remove(one.id) == one and store.remove(one.id) is None
    assert store.for_subscription(SUB) == []


def test_exempt_cli_add_list_remove(azurite_connection_string):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STATE_", "EXEMPTIONS_"))}
    env.update({"STATE_STORAGE__connectionString": azurite_connection_string,
                "EXEMPTIONS_TABLE_NAME": "ex" + uuid.uuid4().hex[:10]})

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "shared", "exempt", *args], capture_output=True, text=True,
                              cwd=REPO, env=env, timeout=60)

    added = cli("add", "--scope", SA_ID, "--control", "storage-min-tls-1-2", "--justification", "legacy client",
                "--requester", "ana@contoso.com", "--days", "30")
    assert added.returncode == 0, added.stderr
    exemption = json.loads(added.stdout)
    listed = cli("list", "--format", "json")
    assert [e["id"] for e in json.loads(listed.stdout)] == [exemption["id"]]
    assert "legacy client" in cli("list").stdout
    bad = cli("add", "--scope", SA_ID, "--justification", "x", "--requester", "y", "--days", "999")
    assert bad.returncode == 2 and "expires: at most 366 days" in bad.stderr
    unknown = cli("add", "--scope", SA_ID, "--control", "nope", "--justification", "x", "--requester", "y", "--days", "1")
    assert unknown.returncode == 2 and "unknown control id 'nope'" in unknown.stderr
    assert cli("remove", exemption["id"]).returncode == 0
    assert json.loads(cli("list", "--format", "json").stdout) == []
    missing = cli("remove", exemption["id"])
    assert missing.returncode == 2 and "no exemption with id" in missing.stderr
