"""What is assigned, as controls: one per (assignment, definition reference), and their verdicts with
the ids Azure Policy's own policy states carry. Pure: documents in, results out.

``assigned_catalog`` resolves each assignment's definition or policy set in the definitions given,
converts it with the assignment's parameter values and effect overrides (``import-policy``'s
conversion), and compiles one control per member. A definition or member that cannot be found
or converted is listed once in ``problems`` with its id and the reason; one whose effect is
Disabled (by parameter or override) is listed in ``disabled`` and evaluates nothing, as in Azure.
Members of the same definition with the same parameter values and overrides are converted and
compiled once, whichever assignments share them.

``evaluate_assigned`` evaluates a resource against the controls of the assignments that reach it
(scope, ``notScopes``, resource selectors: ``shared.domain.assignments``) and of which it is
applicable (Azure's rules, ``shared.policy.applicability``); an exemption that covers it makes the
result ``Exempt`` with the exemption's id.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

from ...catalog import Catalog, Control, RelatedSource
from ...domain.assignments import Ancestors, Assignment, PolicyExemption
from ...domain.results import Status
from .. import FieldResolver
from .definitions import convert_definition
from .documents import DefinitionLibrary, _properties, definition_name, is_policy_set, policy_documents
from .initiatives import convert_set
from .model import DISABLED_REASON, REFUSED, TEMPLATE, Outcome, slug


@dataclass(frozen=True)
class AssignedControl:
    """One (assignment, definition reference): the ids its results carry."""

    control_id: str
    assignment: Assignment
    definition_id: str
    set_id: str | None = None
    reference_id: str | None = None
    version: str | None = None  # properties.version of the definition evaluated, where it has one


@dataclass
class AssignedCatalog:
    catalog: Catalog
    controls: dict[str, AssignedControl]
    problems: list[str] = field(default_factory=list)  # "<assignment>: <what>: <why>", each once
    disabled: list[str] = field(default_factory=list)  # members whose effect is Disabled: nothing evaluated
    notes: list[str] = field(default_factory=list)  # e.g. a definitionVersion the definition given does not match


class PolicyLibrary:
    """The definitions and policy sets assignments are resolved in (by name, the id's last segment)."""

    def __init__(self, definitions: DefinitionLibrary | None = None,
                 remote: Callable[[str], Mapping[str, Any] | None] | None = None) -> None:
        """``remote(id)`` reads a definition or policy set not given (ARM in Azure), once per id."""
        self.definitions = definitions if definitions is not None else DefinitionLibrary(remote=remote)
        self.sets: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self.remote = remote

    def add_documents(self, docs: Iterable[tuple[str, Any]]) -> list[str]:
        """Add every definition and set in (origin, decoded JSON) pairs; the inputs that hold none."""
        items, unusable = policy_documents(docs)
        for label, item in items:
            if is_policy_set(item):
                self.sets.setdefault(definition_name(item).lower(), (label, item))
            else:
                self.definitions.add(label, item)
        return unusable

    def find_set(self, set_id: str) -> Mapping[str, Any] | None:
        name = set_id.rstrip("/").rsplit("/", 1)[-1].lower()
        if name not in self.sets and self.remote is not None:
            doc = self.remote(set_id)
            if doc is not None:
                self.sets[name] = (set_id, doc)
        found = self.sets.get(name)
        return found[1] if found else None


def _control_id(assignment: Assignment, member: str) -> str:
    digest = hashlib.sha256(f"{assignment.id.lower()}|{member.lower()}".encode()).hexdigest()[:8]
    return f"{slug(assignment.name)[:36].rstrip('-')}-{slug(member)[:32].rstrip('-')}-{digest}"


def _version(definition: Mapping[str, Any] | None) -> str | None:
    if not isinstance(definition, Mapping):
        return None
    props = _properties(definition)
    version = props.get("version") or (props.get("metadata") or {}).get("version")
    return str(version) if version else None


def assigned_catalog(assignments: Iterable[Assignment], library: PolicyLibrary, *, resolver: FieldResolver,
                     severity: str = "Medium", compiled: dict | None = None) -> AssignedCatalog:
    """``compiled``: conversions kept across calls (one per definition, parameter values and overrides),
    so the same management-group assignment seen from many subscriptions is converted once."""
    controls: list[Control] = []
    assigned: dict[str, AssignedControl] = {}
    problems: list[str] = []
    disabled: list[str] = []
    notes: list[str] = []
    shared: dict[tuple, list[tuple[Outcome, Control | None]]] = {} if compiled is None else compiled
    for assignment in assignments:
        where = f"assignment {assignment.name}"
        key = (assignment.policy_definition_id.rstrip("/").lower(),
               json.dumps(assignment.parameters, sort_keys=True, default=str),
               tuple((o.effect.lower(), o.selectors) for o in assignment.overrides))
        if key not in shared:
            outcomes = _convert(assignment, library, resolver, severity)
            if outcomes is None:
                problems.append(f"{where}: {assignment.policy_definition_id}: not found in the definitions given "
                                f"(--definitions DIR, a folder of definitions and policy sets)")
                continue
            shared[key] = [(o, _compiled(o)) for o in outcomes]
        set_id = assignment.policy_definition_id if assignment.is_set else None
        for outcome, control in shared[key]:
            member = outcome.reference_id or (outcome.definition_id or assignment.policy_definition_id).rsplit("/", 1)[-1]
            label = f"{where}: {outcome.definition_id or assignment.policy_definition_id}" + (
                f" (reference {outcome.reference_id})" if outcome.reference_id else "")
            if outcome.status == REFUSED and outcome.reason.startswith(DISABLED_REASON) or (
                    (assignment.effect_for(outcome.reference_id or None) or "").lower() == "disabled"):
                disabled.append(f"{label}: effect Disabled")
                continue
            if control is None:
                reason = outcome.reason if outcome.status != TEMPLATE else (
                    f"parameter(s) {', '.join(outcome.missing)} have no value in the assignment and no default")
                problems.append(f"{label}: {reason}")
                continue
            cid = _control_id(assignment, member)
            controls.append(dataclasses.replace(control, id=cid))
            definition = library.definitions.find(outcome.definition_id) if outcome.definition_id else None
            version = _version(definition[1] if definition else None)
            assigned[cid] = AssignedControl(cid, assignment, outcome.definition_id or assignment.policy_definition_id,
                                            set_id, outcome.reference_id or None, version)
            wanted = assignment.definition_version
            if wanted and version and not assignment.is_set and not _version_matches(wanted, version):
                notes.append(f"{where}: asks for definitionVersion {wanted}; the definition given is version "
                             f"{version}, which is what is evaluated")
    return AssignedCatalog(Catalog(controls), assigned, problems, disabled, notes)


def _version_matches(wanted: str, version: str) -> bool:
    """``1.*.*`` style: every part that is not ``*`` equals the version's."""
    return all(w in ("*", v) for w, v in zip(wanted.split("."), version.split(".")))


def _convert(assignment: Assignment, library: PolicyLibrary, resolver: FieldResolver,
             severity: str) -> list[Outcome] | None:
    origin = f"assignment {assignment.name}"
    if assignment.is_set:
        policy_set = library.find_set(assignment.policy_definition_id)
        if policy_set is None:
            return None
        return convert_set(policy_set, resolver=resolver, library=library.definitions, origin=origin,
                           values=assignment.parameters, severity=severity, effect_of=_forced(assignment))
    found = library.definitions.find(assignment.policy_definition_id)
    if found is None:
        return None
    outcome = convert_definition(found[1], resolver=resolver, origin=origin, values=assignment.parameters,
                                 severity=severity, effect=_forced(assignment)(None))
    outcome.definition_id = outcome.definition_id or assignment.policy_definition_id
    return [outcome]


def _forced(assignment: Assignment):
    """The effect an override forces on a member (None: the definition's own), Disabled left to the caller."""
    def effect_of(reference_id: str | None) -> str | None:
        effect = assignment.effect_for(reference_id)
        return None if effect is None or effect.lower() == "disabled" else effect
    return effect_of


def _compiled(outcome: Outcome) -> Control | None:
    """The control conversion compiled, unless it is refused or a template (no verdict without values)."""
    return None if outcome.status in (REFUSED, TEMPLATE) else outcome.compiled


def reached_controls(assigned: AssignedCatalog, resource: Mapping[str, Any],
                     ancestors: Ancestors | None = None) -> set[str]:
    """Ids of the controls whose assignment reaches ``resource`` (scope, notScopes, resource selectors).
    Without ``ancestors`` (offline) a management-group assignment is taken to reach every resource; with
    them, a subscription they do not know is not below it."""
    accepted = (True, None) if ancestors is None else (True,)  # None: a management group not known offline
    reaches: dict[str, bool] = {}  # per assignment, not per member: a set has hundreds
    for ac in assigned.controls.values():
        if ac.assignment.id not in reaches:
            reaches[ac.assignment.id] = ac.assignment.reaches(resource, ancestors) in accepted
    return {cid for cid, ac in assigned.controls.items() if reaches[ac.assignment.id]}


def exemption_for(ac: AssignedControl, resource: Mapping[str, Any], exemptions: Iterable[PolicyExemption],
                  now: datetime) -> PolicyExemption | None:
    return next((e for e in exemptions if e.covers(resource, ac.assignment.id, ac.reference_id, now)), None)


def evaluate_assigned(assigned: AssignedCatalog, resource: Mapping[str, Any], *, now: datetime,
                      exemptions: Iterable[PolicyExemption] = (), ancestors: Ancestors | None = None,
                      related: RelatedSource | None = None,
                      judge: Callable[[Catalog, set[str]], list] | None = None) -> list[dict[str, Any]]:
    """One row per (assignment, reference) that reaches ``resource`` and applies to it (see
    ``reached_controls``); an exemption that covers it makes the row Exempt. ``judge(catalog, ids)``
    replaces the catalog's own evaluation (a template's resources: unknown values are NotEvaluated)."""
    reached = reached_controls(assigned, resource, ancestors)
    if not reached:
        return []
    exemptions = list(exemptions)
    rows = []
    results = judge(assigned.catalog, reached) if judge is not None else \
        assigned.catalog.evaluate(resource, related, only=lambda c: c.id in reached)
    for result in results:
        ac = assigned.controls[result.control_id]
        exemption = exemption_for(ac, resource, exemptions, now)
        status = Status.EXEMPT if exemption is not None else result.status
        row: dict[str, Any] = {
            "resourceId": resource.get("id"), "policyAssignmentId": ac.assignment.id,
            "policyAssignmentName": ac.assignment.name, "policyDefinitionId": ac.definition_id}
        if ac.set_id:
            row["policySetDefinitionId"] = ac.set_id
            row["policyDefinitionReferenceId"] = ac.reference_id
        if ac.version:
            row["policyDefinitionVersion"] = ac.version
        row.update({"controlId": result.control_id, "title": result.title, "severity": result.severity,
                    "status": status.value, "enforcementMode": ac.assignment.enforcement_mode,
                    "evidence": result.evidence})
        if result.reason:
            row["reason"] = result.reason
        if result.status == Status.NONCOMPLIANT:
            message = ac.assignment.message_for(ac.reference_id)
            if message:
                row["nonComplianceMessage"] = message
        if exemption is not None:
            row["exemptionId"], row["exemptionCategory"] = exemption.id, exemption.category
        rows.append(row)
    return rows
