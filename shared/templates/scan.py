"""The controls judged on the resources a template declares. Pure: a catalog and an expansion in, results
out. A control that reads a value not known before deployment (``Unknown``) is NotEvaluated with the
reason; so is one that needs related resources the template does not declare (Azure holds those only
once deployed)."""
from __future__ import annotations

from typing import Any, Iterable

from ..catalog import Catalog, ControlResult, RelatedUnavailable, Status
from .expand import Declared


def _affects(read: tuple, unknown: tuple) -> bool:
    """A read path meets an unknown one: one is a prefix of the other ('*' matches any index)."""
    for a, b in zip(read, unknown):
        if a == "*" and isinstance(b, int):
            continue
        if str(a).lower() != str(b).lower():
            return False
    return True


def _related_in(siblings: Iterable[Declared], declared: Declared):
    """Related resources from the same template: the declared ones of the type asked for that are children
    or extensions of the resource. None declared: Azure's are read once deployed, so not known now."""
    base = declared.resource["id"].lower()

    def related(resource: Any, spec: Any) -> list:
        found = [d for d in siblings if d is not declared and str(d.resource.get("type", "")).lower() == spec.type.lower()
                 and d.resource["id"].lower().startswith(base + "/")]
        if not found:
            raise RelatedUnavailable(f"the template declares no {spec.type} for it; Azure's are read once it is "
                                     f"deployed")
        unknown = next((d for d in found if d.unknowns), None)
        if unknown is not None:
            path, why = unknown.unknowns[0]
            raise RelatedUnavailable(f"the related {spec.type} {unknown.label}: {'.'.join(map(str, path))} is not "
                                     f"known before deployment: {why}")
        return [d.resource for d in found]

    return related


def judge(catalog: Catalog, declared: Declared, only: Iterable[str] | None = None,
          siblings: Iterable[Declared] = ()) -> list[ControlResult]:
    """The results of the controls that apply to one declared resource (``only``: those ids); related
    resources (diagnostic settings, child settings) come from ``siblings``, the template's others."""
    wanted = set(only) if only is not None else None
    results = catalog.evaluate(declared.resource, _related_in(list(siblings), declared),
                               only=None if wanted is None else lambda c: c.id in wanted)
    if not declared.unknowns:
        return results
    controls = catalog.by_id()
    out = []
    for result in results:
        control = controls.get(result.control_id)
        reads = getattr(control, "reads", None)
        hit = None
        if reads is not None and reads.opaque:
            hit = declared.unknowns[0]
        elif reads is not None:
            hit = next(((path, why) for path, why in declared.unknowns
                        if any(_affects(p, path) for p in reads.paths)), None)
            if hit is None and control is not None and control.applicability is not None:
                hit = next(((path, why) for path, why in declared.unknowns if path[:1] in (("name",), ("kind",))), None)
        if hit is not None and result.status != Status.NOT_EVALUATED:
            where = ".".join(str(p) for p in hit[0]) or "the resource"
            result = ControlResult(result.control_id, result.title, result.severity, Status.NOT_EVALUATED, [],
                                   f"{where} is not known before deployment: {hit[1]}")
        out.append(result)
    return out
