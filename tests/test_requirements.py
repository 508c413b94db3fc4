"""Installs are repeatable: ``make`` installs requirements.lock, which pins every package exactly and
satisfies every range in requirements*.txt (``make lock`` refreshes it after those change)."""
from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"


def requirement_lines(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            lines.extend(requirement_lines(path.parent / line[3:].strip()))
        else:
            assert not line.startswith("-"), f"{path.name}: option lines are not expected: {line}"
            lines.append(line)
    return lines


def pins() -> dict[str, str]:
    found = {}
    for line in requirement_lines(LOCK):
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert match, f"requirements.lock: not an exact pin: {line!r}"
        found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def test_the_lock_pins_every_package_exactly_and_satisfies_every_range():
    locked = pins()
    for path in (REPO / "requirements.txt", REPO / "requirements-dev.txt"):
        for line in requirement_lines(path):
            req = Requirement(line)
            name = canonicalize_name(req.name)
            assert name in locked, f"{path.name}: {req.name} is not in requirements.lock: run make lock"
            assert req.specifier.contains(locked[name], prereleases=True), \
                f"{path.name}: {line} but requirements.lock pins {locked[name]}: run make lock"


def test_the_lock_holds_the_parser_versions_the_bicep_tests_pass_with():
    """pycep-parser 0.7.x parses these templates differently: the range stops before it, the lock pins 0.5."""
    assert pins()["pycep-parser"].startswith("0.5.")


def test_make_installs_the_lock_and_can_refresh_it():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^\$\(STAMP\): requirements\.lock$", makefile, re.M)
    assert "pip install --quiet -r requirements.lock" in makefile
    assert "pip install --quiet -r requirements-dev.txt" not in makefile
    assert re.search(r"^lock: ", makefile, re.M) and "pip-compile" in makefile
    assert "lock" in re.search(r"^\.PHONY: (.*)$", makefile, re.M).group(1).split()
