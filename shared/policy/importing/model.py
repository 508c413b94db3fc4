"""What an import produces and the vocabulary it uses: outcomes, effects, data-plane modes, errors."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping



AUDIT_EFFECTS = {"audit", "deny"}
EXISTENCE_EFFECTS = {"auditifnotexists", "deployifnotexists"}
CONDITION_EFFECTS = {"modify", "append"}
AUDITABLE_EFFECTS = AUDIT_EFFECTS | EXISTENCE_EFFECTS | CONDITION_EFFECTS
EFFECT_NAMES = {"audit": "Audit", "deny": "Deny", "auditifnotexists": "AuditIfNotExists",
                "deployifnotexists": "DeployIfNotExists", "modify": "Modify", "append": "Append"}
# The only types whose identity.type a modify operation may set (Azure Policy docs, modify effect, operations).
IDENTITY_TYPE_MODIFIABLE = ("Microsoft.Compute/virtualMachines", "Microsoft.Compute/virtualMachineScaleSets")
REFUSED_EFFECTS = {
    "denyaction": "effect denyAction blocks delete requests at the API; it leaves no resource state to monitor",
    "manual": "effect manual: compliance is attested by people, not computed from the resource",
    "auditaction": "effect auditAction records API requests (actions), not resource state; there is no verdict to keep",
    "mutate": "effect mutate changes Kubernetes objects at admission inside the cluster; it has no ARM verdict",
}
# Data-plane modes: Azure Policy judges objects Resource Manager does not hold, and reports its verdict per
# cluster or vault. Such a definition becomes a control that takes Azure Policy's own verdict for the
# resource (shared.domain.policy_states); (where it is evaluated, the types whose policy states carry the verdict).
DATA_PLANE_MODES = {
    "microsoft.kubernetes.data": ("inside the cluster by the Azure Policy add-on (Gatekeeper)",
                                  ["Microsoft.ContainerService/managedClusters", "Microsoft.Kubernetes/connectedClusters"]),
    "microsoft.keyvault.data": ("in the vault's data plane (keys, secrets, certificates)", ["Microsoft.KeyVault/vaults"]),
    "microsoft.managedhsm.data": ("in the Managed HSM's data plane (keys)", ["Microsoft.KeyVault/managedHSMs"]),
}
PARAMETER_TYPES = {"string": "String", "array": "Array", "integer": "Integer", "boolean": "Boolean",
                   "object": "Object", "float": "Float", "datetime": "DateTime"}
DEFINITION_PREFIX = "/providers/microsoft.authorization/policydefinitions/"
_PARAMETER_REF = re.compile(r"\[parameters\('([^']+)'\)\]", re.IGNORECASE)

IMPORTED, TEMPLATE, DELEGATED, REFUSED = "imported", "template", "delegated", "refused"
DISABLED_REASON = "its effect is Disabled"  # how a refusal for a Disabled effect begins


class PolicyImportError(ValueError):
    """A definition that cannot become a control; the message names it and the reason."""


class UnusableInput(ValueError):
    """An input that is not a policy document at all (the message names it)."""


@dataclass
class Outcome:
    """What became of one definition (or one initiative member)."""

    origin: str  # file, with [index] or member reference
    name: str  # display name, else definition name
    status: str  # imported | template | delegated (verdict read from Azure Policy) | refused
    reason: str = ""
    control: dict[str, Any] | None = None
    missing: tuple[str, ...] = ()  # template: parameters that still need values
    definition_id: str = ""
    samples: dict[str, Any] = field(default_factory=dict)  # template: values it was checked with
    reference_id: str = ""  # an initiative member's policyDefinitionReferenceId
    compiled: Any = field(default=None, repr=False, compare=False)  # the loaded Control, when it needs no samples


def slug(text: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:70].rstrip("-") or "imported-policy"


def _lower_get(mapping: Mapping[str, Any], key: str, default: Any = None) -> Any:
    return next((v for k, v in mapping.items() if k.lower() == key.lower()), default)
