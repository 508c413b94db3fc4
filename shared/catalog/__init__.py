"""Controls as data: load YAML control files, compile their rules, evaluate resources.

A control file holds one control. Its ``rule`` is an Azure Policy
``policyRule.if`` condition that is true when the resource is NON-compliant
(the same sense as an ``audit`` or ``deny`` effect). Pure apart from reading the
files at load time.

The modules, in the order a control passes through them:

* ``loading`` - control files: the schema, parameters (``allowedValues`` as Azure checks them),
  alias resolution (local table -> alias snapshot -> ARM), compilation; ``load_catalog``.
* ``model`` - ``Control`` and the related resources it reads (``RelatedSpec``, ``RelatedCheck``:
  auditIfNotExists-style child, extension or resource-group resources; ``offline_related``).
* ``evaluation`` - ``Catalog``: which controls apply to a resource type, and evaluating them.

Results (``Status``, ``ControlResult``) are domain types (``shared.domain.results``), re-exported
here. What the rest of the code uses is named below; nothing else is imported from outside.
"""
from __future__ import annotations

from ..domain.results import ControlResult, Status, evidence_json, results_as_json
from .evaluation import Catalog
from .loading import (ALIASES_DIR, BUILTIN_DIR, CONTROL_SCHEMA, SEVERITIES, ControlLoadError, alias_resolver,
                      control_files, control_from_document, load_aliases, load_catalog, load_yaml)
from .model import (EXTENSION_NAMESPACES, Control, RelatedCheck, RelatedSource, RelatedSpec, RelatedUnavailable,
                    offline_related, related_scope)

__all__ = [
    "ALIASES_DIR", "BUILTIN_DIR", "CONTROL_SCHEMA", "EXTENSION_NAMESPACES", "SEVERITIES", "Catalog", "Control",
    "ControlLoadError", "ControlResult", "RelatedCheck", "RelatedSource", "RelatedSpec", "RelatedUnavailable",
    "Status", "alias_resolver", "control_files", "control_from_document", "evidence_json", "load_aliases",
    "load_catalog", "load_yaml", "offline_related", "related_scope", "results_as_json",
]
