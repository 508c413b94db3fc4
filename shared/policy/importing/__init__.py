"""Azure Policy definitions and initiatives -> control documents. Pure apart from the caller's file I/O.

Every definition gets an ``Outcome``: ``imported`` (a control that loads as is),
``template`` (a control whose parameters still need values: it loads once they are
given, with ``--parameters`` or ``CONTROL_PARAMETERS``) or ``refused`` (with the
reason). One bad definition never stops the others.

Effects, as the monitor evaluates them (the rule's ``if`` true means non-compliant):

* ``audit``, ``deny``: the ``if`` is the control's rule;
* ``auditIfNotExists``, ``deployIfNotExists``: the ``details`` become a ``related``
  check (nothing is deployed): constant or computed ``name`` and ``resourceGroupName``,
  ``existenceScope``;
* ``modify``: the ``if`` and "some operation would change the resource"; the
  operations are shown as the remediation; ``append``: the ``if``, values shown;
* ``Disabled`` (as the default or the value given): not imported unless asked
  (``enable_disabled``), then with the first auditable allowed effect;
* the data-plane modes (``Microsoft.Kubernetes.Data``, ``Microsoft.KeyVault.Data``,
  ``Microsoft.ManagedHSM.Data``) are *delegated*: the control takes Azure Policy's own verdict
  for the cluster or vault from its compliance states (``shared.domain.policy_states``);
* ``denyAction``, ``auditAction``, ``manual`` and ``mutate`` are refused: they have no verdict to keep
  (see docs/POLICY-COMPATIBILITY.md).

Values for parameters come in the shape of an assignment's ``parameters``
(``{"name": {"value": ...}}``); an initiative maps its own parameters onto its
members' (``[parameters('x')]``) as Azure does.

The modules: ``model`` (outcomes, effects, data-plane modes, errors), ``parameters`` (assignment-style
values), ``documents`` (what a file holds; the definition library), ``definitions`` (one definition),
``initiatives`` (a policy set's members), ``batch`` (many documents, unique ids), ``assigned``
(assignments: one control per assignment and member, results with Azure Policy's ids). What the rest of
the code uses is named below; nothing else is imported from outside.
"""
from __future__ import annotations

from .assigned import (AssignedCatalog, AssignedControl, PolicyLibrary, assigned_catalog, evaluate_assigned,
                       exemption_for, reached_controls)
from .batch import import_documents
from .definitions import control_from_definition, convert_definition
from .documents import DefinitionLibrary, definition_name, documents_in, is_policy_set
from .initiatives import convert_set, frameworks_from_groups
from .model import (DISABLED_REASON, AUDITABLE_EFFECTS, AUDIT_EFFECTS, CONDITION_EFFECTS, DATA_PLANE_MODES, DEFINITION_PREFIX,
                    DELEGATED, EXISTENCE_EFFECTS, IMPORTED, PARAMETER_TYPES, REFUSED, REFUSED_EFFECTS, TEMPLATE,
                    Outcome, PolicyImportError, UnusableInput, slug)
from .parameters import SAMPLES_KEY, parameter_values, parse_assignment, sample_value, samples_document

__all__ = [
    "DISABLED_REASON", "SAMPLES_KEY", "samples_document",
    "AssignedCatalog", "AssignedControl", "PolicyLibrary", "assigned_catalog", "evaluate_assigned", "exemption_for",
    "reached_controls",
    "AUDITABLE_EFFECTS", "AUDIT_EFFECTS", "CONDITION_EFFECTS", "DATA_PLANE_MODES", "DEFINITION_PREFIX", "DELEGATED",
    "DefinitionLibrary", "EXISTENCE_EFFECTS", "IMPORTED", "Outcome", "PARAMETER_TYPES", "PolicyImportError",
    "REFUSED", "REFUSED_EFFECTS", "TEMPLATE", "UnusableInput", "control_from_definition", "convert_definition",
    "convert_set", "definition_name", "documents_in", "frameworks_from_groups", "import_documents", "is_policy_set",
    "parameter_values", "parse_assignment", "sample_value", "slug",
]
