"""Many documents in one run: every definition and initiative member, control ids unique across the run."""
from __future__ import annotations

import hashlib
from typing import Any, Callable, Iterable, Mapping

from .. import FieldResolver
from .definitions import convert_definition
from .documents import DefinitionLibrary, is_policy_set, policy_documents
from .initiatives import convert_set
from .model import Outcome


def import_documents(docs: Iterable[tuple[str, Any]], *, resolver: FieldResolver,
                     library: DefinitionLibrary | None = None, values: Mapping[str, Any] | None = None,
                     severity: str = "Medium", prefix: str = "", enable_disabled: bool = False,
                     progress: Callable[[int], None] | None = None) -> tuple[list[Outcome], list[str]]:
    """Outcomes for every definition (and initiative member) in ``docs`` ((origin, decoded JSON) pairs),
    and the inputs that could not be used at all. Control ids are unique across the run."""
    library = library if library is not None else DefinitionLibrary()
    items, unusable = policy_documents(docs)
    for label, item in items:
        library.add(label, item)
    outcomes: list[Outcome] = []
    for label, item in items:
        if is_policy_set(item):
            outcomes.extend(convert_set(item, resolver=resolver, library=library, origin=label, values=values,
                                        severity=severity, prefix=prefix, enable_disabled=enable_disabled))
        else:
            outcomes.append(convert_definition(item, resolver=resolver, origin=label, values=values,
                                               severity=severity, prefix=prefix, enable_disabled=enable_disabled))
        if progress is not None:
            progress(len(outcomes))
    _unique_ids(outcomes)
    return outcomes, unusable


def _unique_ids(outcomes: list[Outcome]) -> None:
    """Two definitions with one display name get distinct ids (a short hash of the definition name)."""
    seen: dict[str, str] = {}
    for outcome in outcomes:
        control = outcome.control
        if control is None:
            continue
        key = (outcome.definition_id or outcome.origin).lower()
        cid = control["id"]
        if cid in seen and seen[cid] != key:
            suffix = hashlib.sha256(key.encode()).hexdigest()[:8]
            control["id"] = f"{cid[:71].rstrip('-')}-{suffix}"
        seen.setdefault(control["id"], key)
