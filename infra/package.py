"""Builds the code package of the Function App: out/app.zip (docs/DEPLOY.md).

Only what the Functions host runs goes in: function_app.py, host.json,
requirements.txt (installed by the remote build), handlers/ and shared/ without what only the
command line uses (the CLI, the demo, the developer tools), plus any folder of custom controls
given with --include (point CONTROLS_PATH at it).

    .venv/bin/python infra/package.py [--out out/app.zip] [--include corp-controls]
    az functionapp deployment source config-zip -g <rg> -n <app> --src out/app.zip --build-remote true
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILES = ("function_app.py", "host.json", "requirements.txt")
FOLDERS = ("handlers", "shared")
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}
# The command line's own parts: the Function App never imports them (tests/test_infra.py checks it).
SKIP_PATHS = {Path("shared/cli"), Path("shared/demo"), Path("shared/devtools"), Path("shared/__main__.py")}


def package_members(includes: tuple[str, ...] = ()) -> list[Path]:
    """Repository-relative paths that go into the package, sorted."""
    members = [Path(name) for name in FILES]
    for folder in (*FOLDERS, *includes):
        root = (REPO / folder).resolve()
        if not root.is_dir() or REPO not in root.parents:
            raise SystemExit(f"package: {folder} is not a folder inside the repository")
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(REPO)
            skipped = any(relative == s or s in relative.parents for s in SKIP_PATHS)
            if path.is_file() and not skipped and not SKIP_PARTS & set(relative.parts) \
                    and path.suffix not in SKIP_SUFFIXES:
                members.append(relative)
    missing = [m for m in members if not (REPO / m).is_file()]
    if missing:
        raise SystemExit(f"package: missing {', '.join(map(str, missing))}")
    return sorted(set(members))


def build(out: Path, includes: tuple[str, ...] = ()) -> list[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    members = package_members(includes)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in members:
            archive.write(REPO / member, member.as_posix())
    return members


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "out" / "app.zip")
    parser.add_argument("--include", action="append", default=[], help="a folder of custom controls to add")
    args = parser.parse_args(argv)
    members = build(args.out, tuple(args.include))
    print(f"wrote {args.out} ({len(members)} files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
