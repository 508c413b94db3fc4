"""Generated documentation is current, and the alias tables are well formed."""
from __future__ import annotations

from pathlib import Path

from shared.cli import catalog_markdown as render_markdown
from shared.catalog import load_aliases, load_catalog
from shared.policy import WILDCARD, parse_path

REPO = Path(__file__).resolve().parents[1]


def test_controls_doc_is_current():
    expected = render_markdown(load_catalog())
    actual = (REPO / "docs" / "CONTROLS.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/CONTROLS.md is stale: run 'make docs'"


def test_every_alias_maps_to_a_parseable_path():
    aliases = load_aliases()
    assert aliases
    for alias, path in aliases.items():
        segments = parse_path(path)
        assert segments, alias
        assert (WILDCARD in segments) == ("[*]" in alias), f"{alias}: '[*]' in the alias and its path must agree"


def test_local_alias_table_holds_only_what_the_snapshot_lacks_each_with_a_reason():
    import yaml

    from shared.policy.aliases import default_snapshot
    from shared.catalog import ALIASES_DIR

    for table in sorted(ALIASES_DIR.glob("*.yaml")):
        for alias, entry in yaml.safe_load(table.read_text(encoding="utf-8")).items():
            assert isinstance(entry, dict) and len(str(entry.get("reason", ""))) > 20, f"{table.name}: {alias} needs a reason"
            assert default_snapshot().get(alias) is None, f"{table.name}: {alias} is in the alias snapshot: remove it"


def test_readme_names_every_cli_command():
    from shared.cli import build_parser

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert all(f"`{name}" in readme for name in commands), [n for n in commands if f"`{n}" not in readme]
