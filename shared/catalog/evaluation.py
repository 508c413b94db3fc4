"""The catalog: which controls apply to a resource, and evaluating them, related resources
included. Pure: related resources come through the ``RelatedSource`` the caller gives.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..domain.policy_states import verdict as policy_state_verdict
from ..domain.redaction import redact
from ..domain.results import ControlResult, Status
from ..policy import EvaluationError
from .model import Control, RelatedSource, RelatedSpec, RelatedUnavailable, offline_related


@dataclass
class Catalog:
    controls: list[Control]

    def __post_init__(self) -> None:
        self._by_type: dict[str, list[Control]] = {}
        self._checked_types: dict[str, bool] = {}  # type -> whether a control of it decides per resource
        self._views: dict[str, list[Control]] = {}  # parent type -> its child-type controls, as judged on it
        for control in self.controls:
            for child in sorted(control.child_types):
                parent = child.rsplit("/", 1)[0]
                self._views.setdefault(parent, []).append(control.parent_view(parent))
        self._any: list[Control] = [c for c in self.controls if "*" in c.resource_types]
        self._any_group = any(c.uses_group for c in self.controls)
        self._any_subscription = any(c.uses_subscription for c in self.controls)
        # control id -> (title, severity): describes controls that close on delete; built once, not per event
        self.titles: dict[str, tuple[str, str]] = {c.id: (c.title, c.severity) for c in self.controls}

    def by_id(self) -> dict[str, Control]:
        return {c.id: c for c in self.controls}

    def may_apply(self, resource_type: str) -> bool:
        """Whether any control could apply to a resource of this type."""
        return bool(self._any) or bool(self._for_type(resource_type))

    def _for_type(self, resource_type: str) -> list[Control]:
        key = resource_type.lower()
        if key not in self._by_type:
            self._by_type[key] = [c for c in self.controls if key in c.resource_types] + self._views.get(key, [])
            self._checked_types[key] = any(c.checks_each_resource for c in self._by_type[key])
        return self._by_type[key]

    def uses_resource_group(self, resource: Mapping[str, Any]) -> bool:
        """Whether a control that applies to ``resource`` reads ``resourceGroup()`` (its tags, location...)."""
        return self._any_group and any(c.uses_group for c in self.applicable(resource))

    def uses_subscription(self, resource: Mapping[str, Any]) -> bool:
        """Whether a control that applies to ``resource`` reads ``subscription()`` (its tags...)."""
        return self._any_subscription and any(c.uses_subscription for c in self.applicable(resource))

    def delegates(self, resource_type: str, definition_id: str) -> bool:
        """Whether a control of ``resource_type`` takes Azure Policy's verdict for ``definition_id``."""
        from ..domain.policy_states import same_definition

        return any(c.related is not None and c.related.mode == "azurePolicyState"
                   and same_definition(c.related.definition_id, definition_id)
                   for c in self._for_type(resource_type) + self._any)

    def not_evaluated(self, resource_type: str, reason: str) -> list[ControlResult]:
        """A NotEvaluated result for each control of ``resource_type`` (the resource could not be read)."""
        return [ControlResult(c.id, c.title, c.severity, Status.NOT_EVALUATED, [], reason)
                for c in self._for_type(resource_type) + self._any]

    def applicable(self, resource: Mapping[str, Any]) -> list[Control]:
        """The controls that apply to ``resource``, in evaluation order."""
        rtype = str(resource.get("type", ""))
        typed = self._for_type(rtype)
        if self._checked_types.get(rtype.lower(), True):
            typed = [c for c in typed if not c.checks_each_resource or c.admits(resource)]
        return typed + [c for c in self._any if c.applies_to(resource) and rtype.lower() not in c.resource_types]

    def evaluate(self, resource: Mapping[str, Any], related: RelatedSource | None = None,
                 only: Callable[[Control], bool] | None = None) -> list[ControlResult]:
        """Evaluate every applicable control (or those ``only`` selects) against one ARM resource object.

        ``related(resource, spec)`` fetches related resources for auditIfNotExists-style
        controls; without it they come from ``resource["$related"]`` or are NotEvaluated.
        """
        fetch = related or offline_related
        cache: dict[str, list] = {}
        index: dict = {}  # case-insensitive name lookups, shared by the rules (none changes the resource)
        redacted: dict = {}  # the redacted copy of each resource object that evidence quotes, made once
        results = [self._evaluate_one(control, resource, fetch, cache, index, redacted)
                   for control in self.applicable(resource) if only is None or only(control)]
        return [r for r in results if r is not None]

    @staticmethod
    def _evaluate_one(control: Control, resource: Mapping[str, Any], fetch: RelatedSource,
                      cache: dict[str, list], index: dict | None = None,
                      redacted: dict | None = None) -> ControlResult | None:
        """The control's result, or None where an IfNotExists rule does not match (not applicable)."""
        if control.child_control is not None:
            return Catalog._children_verdict(control.child_control, resource, fetch, redacted)
        try:  # the common case first: a compliant verdict from the fast path, nothing else built
            if not control.rule.matches(resource, index):
                if control.if_not_exists:
                    return None
                return ControlResult(control.id, control.title, control.severity, Status.COMPLIANT)
        except EvaluationError:
            pass  # described below, with its reason

        def verdict(status: Status, evidence: list | None = None, reason: str | None = None) -> ControlResult:
            return ControlResult(control.id, control.title, control.severity, status,
                                 redact(evidence, memo=redacted) if evidence else [], reason)

        try:
            matched, evidence = control.rule.evaluate(resource, evidence=True, index=index)
        except EvaluationError as exc:
            return verdict(Status.NOT_EVALUATED, reason=f"rule failed on this resource: {exc}")
        if not matched:
            return None if control.if_not_exists else verdict(Status.COMPLIANT)
        evidence = [e for e in evidence if e.get("result") is not None]
        if control.related is None:
            return verdict(Status.NONCOMPLIANT, evidence)
        inline = control.related.inline_item(resource) if control.related.mode == "anyMatches" else None
        if inline is not None:  # the setting is carried inline with a value: no related read
            return Catalog._inline_verdict(control, resource, inline, evidence, verdict)
        try:
            spec = control.related.spec.resolve(resource)
        except EvaluationError as exc:
            return verdict(Status.NOT_EVALUATED, reason=f"related resource name failed on this resource: {exc}")
        if spec.key not in cache:  # one read per related spec, shared by the controls that need it
            try:
                cache[spec.key] = fetch(resource, spec)
            except RelatedUnavailable as exc:
                cache[spec.key] = exc
        items = cache[spec.key]
        if isinstance(items, RelatedUnavailable):
            return verdict(Status.NOT_EVALUATED, reason=str(items))
        if control.related.mode == "azurePolicyState":
            status, states, reason = policy_state_verdict(items, control.related.definition_id or "")
            return verdict(Status(status), states, reason)
        if control.related.mode == "noneMatches":
            return Catalog._none_may_match(control, resource, items, evidence, verdict)
        checked = []
        for item in items:
            if control.related.existence is None:
                return verdict(Status.COMPLIANT)
            final, item_evidence = Catalog._existence(control, resource, item, str(item.get("id")), verdict)
            if final is not None:
                return final
            checked.append({"id": item.get("id") or item.get("name"),
                            "evidence": [e for e in item_evidence if e.get("result") is False][:5]})
        summary = {"related": spec.key, "found": len(items),
                   "reason": "none exists" if not items else "none satisfies the existence condition",
                   "checked": checked[:10]}
        return verdict(Status.NONCOMPLIANT, evidence + [summary])

    @staticmethod
    def _existence(control: Control, resource: Mapping[str, Any], item: Mapping[str, Any], where: str,
                   verdict) -> tuple[ControlResult | None, list]:
        """The existence condition on one related item: (Compliant or NotEvaluated, or None when it does not
        hold; the item's evidence)."""
        try:
            ok, item_evidence = control.related.existence_for(resource).evaluate(item, evidence=True)
        except EvaluationError as exc:
            return verdict(Status.NOT_EVALUATED, reason=f"existenceCondition failed on {where}: {exc}"), []
        return (verdict(Status.COMPLIANT) if ok else None), item_evidence

    @staticmethod
    def _children_verdict(control: Control, parent: Mapping[str, Any], fetch: RelatedSource,
                          redacted: dict | None) -> ControlResult | None:
        """A child-type control on the parent: judged on each inline child of its type the control applies
        to; NonCompliant when any is (evidence names them), None when no child is applicable."""
        properties = parent.get("properties")
        children = [item for value in (properties.values() if isinstance(properties, Mapping) else ())
                    if isinstance(value, list) for item in value
                    if isinstance(item, Mapping) and str(item.get("type", "")).lower() in control.resource_types
                    and control.applies_to(item)]
        judged = [(child, Catalog._evaluate_one(control, child, fetch, {}, None, redacted)) for child in children]
        judged = [(child, r) for child, r in judged if r is not None]
        results = [r for _, r in judged]
        if not results:
            return None
        failing = [(child, r) for child, r in judged if r.status == Status.NONCOMPLIANT]
        if failing:
            evidence = [{"child": child.get("id") or child.get("name"), "evidence": r.evidence[:5]}
                        for child, r in failing[:10]]
            return ControlResult(control.id, control.title, control.severity, Status.NONCOMPLIANT, evidence)
        unknown = next((r for r in results if r.status == Status.NOT_EVALUATED), None)
        if unknown is not None:
            return ControlResult(control.id, control.title, control.severity, Status.NOT_EVALUATED, [],
                                 unknown.reason)
        return ControlResult(control.id, control.title, control.severity, Status.COMPLIANT)

    @staticmethod
    def _inline_verdict(control: Control, resource: Mapping[str, Any], item: dict, evidence: list,
                        verdict) -> ControlResult:
        where = ".".join(str(s) for s in control.related.inline)
        final, item_evidence = Catalog._existence(control, resource, item, where, verdict)
        if final is not None:
            return final
        shown = []
        for entry in item_evidence:
            if entry.get("result") is not False:
                continue
            path = entry.get("path")
            if isinstance(path, str) and path.lower().startswith("properties"):
                entry = {**entry, "path": where + path[len("properties"):]}
            shown.append(entry)
        return verdict(Status.NONCOMPLIANT, evidence + shown[:5] + [{
            "related": control.related.spec.key, "inline": where,
            "reason": f"the inline setting ({where}) does not satisfy the existence condition"}])

    @staticmethod
    def _none_may_match(control: Control, resource: Mapping[str, Any], items: list, evidence: list,
                        verdict) -> ControlResult:
        offending = []
        for item in items:
            if control.related.existence is None:
                offending.append({"id": item.get("id") or item.get("name"), "evidence": []})
                continue
            try:
                hit, item_evidence = control.related.existence_for(resource).evaluate(item)
            except EvaluationError as exc:
                return verdict(Status.NOT_EVALUATED, reason=f"condition failed on {item.get('id')}: {exc}")
            if hit:
                offending.append({"id": item.get("id") or item.get("name"), "evidence": item_evidence[:5]})
        if not offending:
            return verdict(Status.COMPLIANT)
        return verdict(Status.NONCOMPLIANT, evidence + [{
            "related": control.related.spec.key, "found": len(items),
            "reason": f"{len(offending)} related resource(s) match the condition", "matching": offending[:10]}])

    def related_specs(self) -> list[RelatedSpec]:
        return list({c.related.spec.key: c.related.spec for c in self.controls if c.related}.values())
