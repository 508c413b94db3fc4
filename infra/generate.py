"""Writes infra/finding-columns.json from shared.findings.FINDING_COLUMNS (the one column list).

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


def render() -> str:
    sys.path.insert(0, str(INFRA.parent))
    from shared.findings import FINDING_COLUMNS

    columns = [{"name": name, "type": kind} for name, kind in FINDING_COLUMNS.items()]
    return json.dumps(columns, indent=2) + "\n"


def main(argv: list[str]) -> int:
    expected = render()
    if "--check" in argv:
        current = COLUMNS_FILE.read_text(encoding="utf-8") if COLUMNS_FILE.exists() else ""
        if current != expected:
            print(f"{COLUMNS_FILE} is stale: run .venv/bin/python infra/generate.py", file=sys.stderr)
            return 1
        return 0
    COLUMNS_FILE.write_text(expected, encoding="utf-8")
    print(f"wrote {COLUMNS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
