"""Writes infra/finding-columns.json from shared.domain.findings.FINDING_COLUMNS (the one column list),
infra/snapshot-columns.json from SNAPSHOT_COLUMNS (the posture snapshot) and infra/parity-columns.json
from shared.domain.parity.PARITY_COLUMNS (parity with Azure Policy).

The Bicep templates load that file for both the Log Analytics table and the data
collection rule's stream declaration (``loadJsonContent``), so the finding record,
the table and the DCR cannot drift apart. tests/test_infra.py fails when the file
is stale.

    .venv/bin/python infra/generate.py          # rewrite the file
    .venv/bin/python infra/generate.py --check  # exit 1 when it is stale
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

INFRA = Path(__file__).resolve().parent
COLUMNS_FILE = INFRA / "finding-columns.json"
SNAPSHOT_COLUMNS_FILE = INFRA / "snapshot-columns.json"
PARITY_COLUMNS_FILE = INFRA / "parity-columns.json"
REJECTION_COLUMNS_FILE = INFRA / "rejections-columns.json"


def render(which: str = "FINDING_COLUMNS") -> str:
    sys.path.insert(0, str(INFRA.parent))
    from shared.domain import findings, parity, rejections

    module = {"PARITY_COLUMNS": parity, "REJECTION_COLUMNS": rejections}.get(which, findings)
    columns = [{"name": name, "type": kind} for name, kind in getattr(module, which).items()]
    return json.dumps(columns, indent=2) + "\n"


def main(argv: list[str]) -> int:
    status = 0
    for path, which in ((COLUMNS_FILE, "FINDING_COLUMNS"), (SNAPSHOT_COLUMNS_FILE, "SNAPSHOT_COLUMNS"),
                        (PARITY_COLUMNS_FILE, "PARITY_COLUMNS"), (REJECTION_COLUMNS_FILE, "REJECTION_COLUMNS")):
        expected = render(which)
        if "--check" in argv:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if current != expected:
                print(f"{path} is stale: run .venv/bin/python infra/generate.py", file=sys.stderr)
                status = 1
            continue
        path.write_text(expected, encoding="utf-8")
        print(f"wrote {path}")
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
