"""Policy documents as they come: one, a list, an ARM page or an ARM template resource; the library of
definitions an initiative's members are looked up in."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from .model import UnusableInput


def _properties(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    props = doc.get("properties", doc)
    return props if isinstance(props, Mapping) else {}


def is_policy_set(doc: Any) -> bool:
    return isinstance(doc, Mapping) and isinstance(_properties(doc).get("policyDefinitions"), list)


def documents_in(doc: Any, origin: str) -> list[tuple[str, Mapping[str, Any]]]:
    """(label, definition or set) from one document, a list of them, or an ARM page ``{"value": [...]}``."""
    if isinstance(doc, Mapping) and isinstance(doc.get("value"), list):
        items = doc["value"]
    elif isinstance(doc, list):
        items = doc
    elif isinstance(doc, Mapping):
        return [(origin, doc)]
    else:
        raise UnusableInput(f"{origin}: expected a policy definition, a policy set definition, a list of them or "
                            f'{{"value": [...]}}, got {type(doc).__name__}')
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise UnusableInput(f"{origin}[{index}]: a policy definition must be a JSON object")
        out.append((f"{origin}[{index}]", item))
    return out


def definition_name(doc: Mapping[str, Any]) -> str:
    """The definition's name (a GUID for built-ins), from ``name`` or the last segment of ``id``."""
    if isinstance(doc.get("name"), str) and doc["name"]:
        return doc["name"]
    return str(doc.get("id") or "").rsplit("/", 1)[-1]


class DefinitionLibrary:
    """Definitions an initiative's members are looked up in: by name (GUID), offline first, then ``remote``."""

    def __init__(self, remote: Callable[[str], Mapping[str, Any] | None] | None = None) -> None:
        self._by_name: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self.remote = remote

    def add(self, origin: str, doc: Mapping[str, Any]) -> None:
        name = definition_name(doc).lower()
        if name and not is_policy_set(doc):
            self._by_name.setdefault(name, (origin, doc))

    def __len__(self) -> int:
        return len(self._by_name)

    def find(self, definition_id: str) -> tuple[str, Mapping[str, Any]] | None:
        name = definition_id.rstrip("/").rsplit("/", 1)[-1].lower()
        if name in self._by_name:
            return self._by_name[name]
        if self.remote is not None:
            doc = self.remote(definition_id)
            if doc is not None:
                self._by_name[name] = (definition_id, doc)
                return self._by_name[name]
        return None


def policy_documents(docs: Iterable[tuple[str, Any]]) -> tuple[list[tuple[str, Mapping[str, Any]]], list[str]]:
    """(label, document) for every definition and policy set in (origin, decoded JSON) pairs, and the
    inputs that hold none (each named)."""
    items: list[tuple[str, Mapping[str, Any]]] = []
    unusable: list[str] = []
    for origin, doc in docs:
        try:
            items.extend(documents_in(doc, origin))
        except UnusableInput as exc:
            unusable.append(str(exc))
    return items, unusable
