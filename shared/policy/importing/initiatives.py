"""An initiative (policy set) -> one control per member, its parameters mapped onto the members' as Azure does."""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Mapping

from .. import FieldResolver
from .definitions import _MISSING, convert_definition
from .documents import DefinitionLibrary, _properties, definition_name
from .model import Outcome, REFUSED, TEMPLATE, _PARAMETER_REF, _lower_get


def frameworks_from_groups(group_names: Iterable[str]) -> dict[str, list[str]]:
    """CIS and MCSB references from an initiative's group names
    (``CIS_Azure_Foundations_v3.0.0_3.1.3.1`` -> cis 3.1.3.1; ``Azure_Security_Benchmark_v3.0_NS-1`` -> mcsb NS-1)."""
    cis: list[str] = []
    mcsb: list[str] = []
    for group in group_names:
        if not isinstance(group, str):
            continue
        m = re.fullmatch(r"CIS_Azure_(?:Foundations_)?v?([\d.]+)_(.+)", group, re.IGNORECASE)
        if m:
            cis.append(m.group(2) if m.group(1).startswith("3.0") else f"v{m.group(1)} {m.group(2)}")
            continue
        m = re.fullmatch(r"(?:Azure_Security_Benchmark|MCSB)_v?[\d.]+_(.+)", group, re.IGNORECASE)
        if m:
            mcsb.append(m.group(1))
    return {k: list(dict.fromkeys(v)) for k, v in (("cis", cis), ("mcsb", mcsb)) if v}


def _member_values(member: Mapping[str, Any], set_values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A member's parameter values with the set's parameters substituted; names the set parameters lacking one."""
    out: dict[str, Any] = {}
    lacking: list[str] = []
    for pname, entry in (member.get("parameters") or {}).items():
        value = entry.get("value") if isinstance(entry, Mapping) else entry
        ref = _PARAMETER_REF.fullmatch(value) if isinstance(value, str) else None
        if ref:
            found = _lower_get(set_values, ref.group(1), _MISSING)
            if found is _MISSING:
                lacking.append(ref.group(1))
                continue
            value = found
        out[pname] = value
    return out, lacking


def convert_set(policy_set: Mapping[str, Any], *, resolver: FieldResolver, library: DefinitionLibrary,
                origin: str = "initiative", values: Mapping[str, Any] | None = None, severity: str = "Medium",
                prefix: str = "", enable_disabled: bool = False,
                effect_of: Callable[[str | None], str | None] | None = None) -> list[Outcome]:
    """One outcome per member of a policy set definition (initiative). ``effect_of(reference id)``
    may force a member's effect (an assignment's overrides)."""
    props = _properties(policy_set)
    set_name = props.get("displayName") or definition_name(policy_set) or origin
    declared = props.get("parameters") or {}
    set_values = {k: v.get("defaultValue") for k, v in declared.items() if isinstance(v, Mapping) and "defaultValue" in v}
    for k, v in (values or {}).items():
        real = next((d for d in declared if d.lower() == k.lower()), k)
        set_values[real] = v
    outcomes = []
    for index, member in enumerate(props.get("policyDefinitions") or []):
        ref = member.get("policyDefinitionReferenceId") if isinstance(member, Mapping) else None
        label = f"{origin}: {ref or f'policyDefinitions[{index}]'}"
        if not isinstance(member, Mapping) or not isinstance(member.get("policyDefinitionId"), str):
            outcomes.append(Outcome(label, str(ref or index), REFUSED, "member has no policyDefinitionId"))
            continue
        member_id = member["policyDefinitionId"]
        if "/policysetdefinitions/" in member_id.lower():
            outcomes.append(Outcome(label, str(ref), REFUSED, "a nested policy set is not a member Azure allows",
                                    definition_id=member_id, reference_id=str(ref or "")))
            continue
        found = library.find(member_id)
        if found is None:
            where = "offline or in ARM" if library.remote else "offline (give --definitions DIR, or --from-arm in Azure)"
            outcomes.append(Outcome(label, str(ref or member_id.rsplit('/', 1)[-1]), REFUSED,
                                    f"member definition {member_id} is not available {where}",
                                    definition_id=member_id, reference_id=str(ref or "")))
            continue
        source, definition = found
        member_values, lacking = _member_values(member, set_values)
        frameworks = frameworks_from_groups(member.get("groupNames") or [])
        outcome = convert_definition(definition, resolver=resolver, origin=label, values=member_values,
                                     severity=severity, prefix=prefix, enable_disabled=enable_disabled,
                                     frameworks=frameworks, effect=effect_of(ref) if effect_of else None)
        outcome.definition_id = outcome.definition_id or member_id
        outcome.reference_id = str(ref or "")
        if lacking and outcome.status != REFUSED:
            outcome.status = TEMPLATE
            outcome.missing = tuple(dict.fromkeys((*outcome.missing, *lacking)))
            outcome.reason = f"set parameter(s) {', '.join(lacking)} of '{set_name}' have no value"
        outcomes.append(outcome)
    if not outcomes:
        outcomes.append(Outcome(origin, str(set_name), REFUSED, "the policy set has no policyDefinitions"))
    return outcomes
