"""Building the controls of what is assigned (part of ``make bench``): time and memory for at least
1,000 assigned member definitions (pairs of an assignment and a member available offline).

The mix is what a landing zone has: Microsoft's initiatives (the Microsoft cloud security benchmark,
CIS Microsoft Azure Foundations v2.1.0 and v3.0.0, from ``../shared/data``) assigned at several
subscriptions, most with the same parameter values (converted and compiled once, shared), some with
an effect override of their own (compiled again), until at least ``--pairs`` pairs of an assignment and an available member exist (members
not available offline are listed, as the command lists them, and not counted). Prints one
JSON object: pairs, distinct compiled controls, seconds, resident memory the controls keep.
"""
from __future__ import annotations

import argparse
import json
import gc
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SETS = ("AzureSecurityCenter.json", "CIS_Azure_Foundations_v3.0.0.json", "CIS_Azure_Foundations_v2.1.0.json")


def assignments(target: int, members: dict[str, int]) -> list[dict]:
    """Assignments of the sets at subscription scopes until ``target`` member pairs; every fourth one
    disables its first member by an override (its own conversion, as in Azure)."""
    out, pairs, n = [], 0, 0
    while pairs < target:
        name = SETS[n % len(SETS)]
        sub = f"00000000-0000-0000-0000-{n:012d}"
        props = {"policyDefinitionId": f"/providers/Microsoft.Authorization/policySetDefinitions/{members[name][0]}",
                 "scope": f"/subscriptions/{sub}", "parameters": {}}
        if n % 4 == 3:
            props["overrides"] = [{"kind": "policyEffect", "value": "Disabled", "selectors": [
                {"kind": "policyDefinitionReferenceId", "in": [members[name][2]]}]}]
        out.append({"id": f"/subscriptions/{sub}/providers/Microsoft.Authorization/policyAssignments/a{n}",
                    "name": f"a{n}", "properties": props})
        pairs += members[name][1]
        n += 1
    return out


def _resident_mib() -> float:
    """The process's resident memory now (Linux /proc), in MiB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(target: int) -> dict:
    sys.path.insert(0, str(REPO))
    from shared.catalog import alias_resolver
    from shared.cli.inputs import json_documents
    from shared.domain.assignments import assignments_in
    from shared.policy.importing import PolicyLibrary, assigned_catalog

    library = PolicyLibrary()
    docs, _ = json_documents([str(DATA / "azure-policy-builtins"), *(str(DATA / "azure-policy-initiatives" / s)
                                                                        for s in SETS)])
    library.add_documents(docs)
    members = {}
    for name in SETS:
        doc = json.loads((DATA / "azure-policy-initiatives" / name).read_text(encoding="utf-8"))
        found = [m["policyDefinitionReferenceId"] for m in doc["properties"]["policyDefinitions"]
                 if library.definitions.find(m["policyDefinitionId"]) is not None]  # available offline
        members[name] = (doc["name"], len(found), found[0])
    parsed = [a for doc in assignments(target, members) for a in assignments_in(doc, "bench")]
    resolver = alias_resolver()
    resolver.resolve("Microsoft.Storage/storageAccounts/supportsHttpsTrafficOnly")  # the snapshot opened first
    gc.collect()
    before = _resident_mib()
    started = time.perf_counter()
    assigned = assigned_catalog(parsed, library, resolver=resolver)
    seconds = time.perf_counter() - started
    gc.collect()
    grown = _resident_mib() - before  # what the built controls keep resident
    pairs = len(assigned.controls) + len(assigned.disabled) + sum(
        1 for p in assigned.problems if "is not available offline" not in p)
    return {"assignments": len(parsed), "pairs": pairs, "controls": len(assigned.controls),
            "compiled": len({id(c.rule) for c in assigned.catalog.controls}), "not_available": len(assigned.problems),
            "disabled": len(assigned.disabled), "seconds": round(seconds, 3), "resident_growth_mib": round(grown, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    args = parser.parse_args(argv)
    if not (DATA / "azure-policy-initiatives").is_dir():
        print(json.dumps({"skipped": f"{DATA} not present"}))
        return 0
    print(json.dumps(measure(args.pairs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
