"""ARM deployment templates before deployment: expanded as ARM would for the resources they declare
(``expand``), with the line each is declared on (``source``), and judged with the catalog (``scan``).
Expressions are evaluated offline (``expressions``); a value only Azure knows at deployment is an
``Unknown`` that makes the controls reading it NotEvaluated with the reason. Pure: no I/O."""
from .expand import (PLACEHOLDER_GROUP, PLACEHOLDER_SUBSCRIPTION, Declared, Expansion, expand_template, is_template,
                     parameter_values)
from .expressions import TemplateError, Unknown
from .scan import judge
from .source import read_json_with_lines

__all__ = ["PLACEHOLDER_GROUP", "PLACEHOLDER_SUBSCRIPTION", "Declared", "Expansion", "TemplateError", "Unknown",
           "expand_template", "is_template", "judge", "parameter_values", "read_json_with_lines"]
