"""Side by side: this engine and Cloud Custodian's value filter on the same resources and equivalent rules.

Run by ``make bench`` as two processes: ``--engine ours`` in the project venv, ``--engine c7n`` in a venv
with c7n-azure (benchmark only, never a project dependency). Each prints one JSON line with its seconds.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "resources"

# (our Azure Policy rule, the equivalent c7n value filter): true means non-compliant on both sides
RULES = [
    ({"field": "Microsoft.Storage/storageAccounts/supportsHttpsTrafficOnly", "notEquals": True},
     {"type": "value", "key": "properties.supportsHttpsTrafficOnly", "op": "ne", "value": True}),
    ({"field": "Microsoft.Storage/storageAccounts/minimumTlsVersion", "notIn": ["TLS1_2", "TLS1_3"]},
     {"type": "value", "key": "properties.minimumTlsVersion", "op": "not-in", "value": ["TLS1_2", "TLS1_3"]}),
    ({"field": "Microsoft.Storage/storageAccounts/allowBlobPublicAccess", "equals": True},
     {"type": "value", "key": "properties.allowBlobPublicAccess", "value": True}),
    ({"field": "Microsoft.Storage/storageAccounts/networkAcls.defaultAction", "notEquals": "Deny"},
     {"type": "value", "key": "properties.networkAcls.defaultAction", "op": "ne", "value": "Deny"}),
]


def corpus(total: int) -> list[dict]:
    base = [json.loads((FIXTURES / f"{n}.json").read_text()) for n in ("storage-hardened", "storage-weak")]
    return [dict(base[i % 2], id=f"{base[i % 2]['id']}{i}") for i in range(total)]


def run_ours(resources: list[dict], rounds: int) -> tuple[float, int]:
    sys.path.insert(0, str(REPO))
    import yaml

    from shared.catalog import load_catalog

    folder = Path(tempfile.mkdtemp())
    for i, (rule, _) in enumerate(RULES):
        (folder / f"r{i}.yaml").write_text(yaml.safe_dump({
            "id": f"bench-rule-{i}", "title": f"benchmark rule {i}", "severity": "High",
            "resourceTypes": ["Microsoft.Storage/storageAccounts"], "rule": rule}))
    catalog = load_catalog([folder])
    flagged = sum(r.status.value == "NonCompliant" for res in resources for r in catalog.evaluate(res))
    started = time.perf_counter()
    for _ in range(rounds):
        for resource in resources:
            catalog.evaluate(resource)
    return (time.perf_counter() - started) / rounds, flagged


def run_c7n(resources: list[dict], rounds: int) -> tuple[float, int]:
    from c7n.filters.core import ValueFilter

    filters = [ValueFilter(spec) for _, spec in RULES]
    for f in filters:
        f.validate()
    flagged = sum(bool(f(res)) for res in resources for f in filters)
    started = time.perf_counter()
    for _ in range(rounds):
        for resource in resources:
            for f in filters:
                f(resource)
    return (time.perf_counter() - started) / rounds, flagged


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=("ours", "c7n"), required=True)
    parser.add_argument("--resources", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    resources = corpus(args.resources)
    seconds, flagged = (run_ours if args.engine == "ours" else run_c7n)(resources, args.rounds)
    print(json.dumps({"engine": args.engine, "resources": len(resources), "rules": len(RULES),
                      "seconds": seconds, "flagged": flagged}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
