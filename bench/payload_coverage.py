"""How far Resource Notifications payloads go: controls judged on the payload vs on one ARM re-read.

Not a timing: for every resource fixture (real ARM GET shapes) cut down to what a
CreatedOrUpdated payload carries (id, name, type, location, tags, properties), and for
Microsoft's documented example, count the applicable controls the payload can judge and
those that need the re-read (``shared/domain/payloads.py``). Prints a Markdown table.

    .venv/bin/python -m bench.payload_coverage
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.catalog import load_catalog  # noqa: E402
from shared.domain.payloads import KNOWN_BOOLEANS, plan  # noqa: E402
from shared.policy import parse_path  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures"
PAYLOAD_KEYS = ("id", "name", "type", "location", "tags", "properties")


def as_payload(resource: dict) -> dict:
    return {k: resource[k] for k in PAYLOAD_KEYS if k in resource}


def coverage() -> list[dict]:
    catalog = load_catalog()
    inputs = [(p.stem, as_payload(json.loads(p.read_text(encoding="utf-8"))), None)
              for p in sorted((FIXTURES / "resources").glob("*.json"))]
    documented = json.loads((FIXTURES / "documented" / "arn-documented-storage.eventgrid.json").read_text())
    inputs.append(("documented example (2019-06-01)", documented["data"]["resourceInfo"],
                   documented["data"]["apiVersion"]))
    rows = []
    for name, payload, version in inputs:
        controls = catalog.applicable(payload)
        extra = [parse_path(p) for p in KNOWN_BOOLEANS.get(str(payload.get("type", "")).lower(), ())]
        result = plan(payload, controls, version, extra)
        lacking = sorted({p for ps in result.missing.values() for p in ps})
        rows.append({"input": name, "type": payload.get("type"), "controls": len(controls),
                     "from_payload": len(controls) - len(result.missing), "reread": len(result.missing),
                     "coerced": len(result.coerced), "lacking": lacking})
    return rows


def main() -> int:
    rows = coverage()
    print("| input | controls | judged on the payload | need the ARM re-read | values typed | properties the payload lacks |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['input']} | {r['controls']} | {r['from_payload']} | {r['reread']} | {r['coerced']} | "
              f"{', '.join(r['lacking'][:4]) + (' ...' if len(r['lacking']) > 4 else '') or '-'} |")
    by_type = defaultdict(list)
    for r in rows:
        by_type[r["type"]].append(r["reread"] > 0)
    needing = sum(1 for r in rows if r["reread"])
    total_controls = sum(r["controls"] for r in rows)
    from_payload = sum(r["from_payload"] for r in rows)
    print(f"\n{needing} of {len(rows)} payloads need the one re-read; {from_payload} of {total_controls} "
          f"control verdicts ({from_payload / total_controls:.0%}) come from the payload itself.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
