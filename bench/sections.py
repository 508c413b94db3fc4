"""Generated sections of the docs: the text between ``<!-- mark -->`` and ``<!-- /mark -->`` is replaced,
everything else is kept (the benchmarks write their tables into docs/SCALE.md this way)."""
from __future__ import annotations

import re
from pathlib import Path


def replace_section(doc: Path, mark: str, text: str) -> None:
    content = doc.read_text(encoding="utf-8")
    pattern = re.compile(rf"(<!-- {re.escape(mark)} -->\n).*?(<!-- /{re.escape(mark)} -->)", re.S)
    if not pattern.search(content):
        raise SystemExit(f"{doc}: no <!-- {mark} --> ... <!-- /{mark} --> section to replace")
    doc.write_text(pattern.sub(lambda m: m.group(1) + text.rstrip("\n") + "\n" + m.group(2), content), encoding="utf-8")


def section(doc: Path, mark: str) -> str:
    """The generated text of one section (what ``replace_section`` wrote)."""
    match = re.search(rf"<!-- {re.escape(mark)} -->\n(.*?)\n?<!-- /{re.escape(mark)} -->",
                      doc.read_text(encoding="utf-8"), re.S)
    if not match:
        raise LookupError(f"{doc} has no {mark} section")
    return match.group(1)
