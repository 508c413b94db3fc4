"""What the commands and the demo read: JSON files, resource documents, the catalog and the state
store the settings name. A bad input raises ``InputError``, whose message names the file and the
problem; ``main`` prints it and exits with ``EXIT_BAD_INPUT``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from ..catalog import Catalog, load_catalog
from ..config import Settings

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2


class InputError(ValueError):
    """A command-line input that cannot be used; the message names the file and the problem."""


def read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_json(path: str) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nests too deeply to be read") from None


def json_documents(paths: list[str]) -> tuple[list[tuple[str, Any]], list[str]]:
    """(file, decoded JSON) for every file given and every *.json below a folder given; unusable inputs."""
    docs, unusable = [], []
    for given in paths:
        root = Path(given)
        files = sorted(root.rglob("*.json")) if root.is_dir() else [root]
        if root.is_dir() and not files:
            unusable.append(f"{given}: the folder holds no .json file")
        for path in files:
            try:
                docs.append((str(path), read_json(str(path))))
            except InputError as exc:
                unusable.append(str(exc))
    return docs, unusable


def resources_from_document(doc: Any, origin: str) -> list[Mapping[str, Any]]:
    """ARM resource objects from one resource, a list, an ARM page or a Resource Graph result."""
    if isinstance(doc, Mapping) and isinstance(doc.get("value"), list):
        items, where = doc["value"], "value"
    elif isinstance(doc, Mapping) and isinstance(doc.get("data"), list):
        items, where = doc["data"], "data"
    elif isinstance(doc, list):
        items, where = doc, ""
    elif isinstance(doc, Mapping):
        items, where = [doc], None
    else:
        raise InputError(f"{origin}: expected an ARM resource object, a list of them, "
                         f'{{"value": [...]}} or {{"data": [...]}}, got {type(doc).__name__}')
    out = []
    for index, item in enumerate(items):
        label = origin if where is None else f"{origin}: {where}[{index}]" if where else f"{origin}: [{index}]"
        if not isinstance(item, Mapping):
            raise InputError(f"{label}: a resource must be a JSON object, got {type(item).__name__}")
        for key in ("id", "type"):
            if not isinstance(item.get(key), str) or not item.get(key):
                raise InputError(f"{label}: resource has no '{key}'")
        out.append(item)
    return out


def resources_in(paths: list[str], locations: dict | None = None,
                 docs: list[tuple[str, Any]] | None = None) -> list[Mapping[str, Any]]:
    """The resources of every file given and of every *.json below a folder given (or of ``docs``, those
    files already read); none at all is an error naming the inputs (an empty list in CI is a mistake, not
    a pass). ``locations`` (given) gets the file and line of each resource, by lower-case id."""
    if docs is None:
        docs, unusable = json_documents(paths)
        if unusable:
            raise InputError("; ".join(unusable))
    resources: list[Mapping[str, Any]] = []
    for origin, doc in docs:
        found = resources_from_document(doc, origin)
        resources.extend(found)
        if locations is not None:
            from .formats import Location, locate

            lines = locate(read_text(origin), [str(r["id"]) for r in found])
            for r in found:
                locations.setdefault(str(r["id"]).lower(), Location(origin, lines[str(r["id"])]))
    if not resources:
        raise InputError(f"{', '.join(paths)}: no resources to evaluate (an empty list)")
    return resources


def catalog_from_settings(settings: Settings) -> Catalog:
    return load_catalog(settings.control_directories(), disabled=settings.disabled_controls,
                        parameters=settings.control_parameters)


def has_state_table(settings: Settings) -> bool:
    """Whether a Table Storage / Azurite state table is configured (commands that read it need one)."""
    return settings.state_store != "memory" and bool(settings.state_connection_string
                                                     or settings.state_table_service_uri)


def store_from_settings(settings: Settings):
    """In memory unless a Table Storage / Azurite connection is configured."""
    if settings.state_connection_string or settings.state_table_service_uri:
        from ..bootstrap import build_store

        return build_store(settings)
    from ..adapters.memory import InMemoryStateStore

    return InMemoryStateStore()
