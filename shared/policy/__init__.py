"""A compiler for the Azure Policy rule language (``policyRule.if``). Pure.

A rule is compiled once at load; evaluating it against an ARM resource object does
no parsing. It is compiled twice from one walk of the rule:

* the *fast path* answers the verdict alone: one generated Python function per rule
  (fields and ``current()`` bound to frame slots, constant ``in``/``equals`` operands
  prepared as sets and case-folded strings, alias paths pre-split, a ``count`` stopping
  once its verdict is decided, values that depend only on an outer element computed
  once per loop), with the same closures it was generated beside as its fallback;
* the *evidence path* (closures over a ``Context``) records the concrete paths and
  values that decided the verdict. It runs only for a rule that matched, and a count's
  ``where`` inside it is decided by the fast path (evidence there is never described).

Semantics follow Azure Policy:

* string comparisons are case-insensitive (``match`` is the exception); a number
  equals its string form; ordering values of different types is an evaluation
  error; ``location`` is normalized (``East US 2`` equals ``eastus2``);
* a missing field is never equal to anything, so ``notEquals``/``notIn``/
  ``notLike``/``notContains`` are true for it and ``exists: false`` matches it;
* a field with ``[*]`` outside ``count`` is true only if the condition holds for
  every element (true for an empty array);
* ``count`` counts array elements (``field``) or values (``value`` + ``name``)
  that satisfy ``where``; ``current()`` names the element being counted;
  ``field()`` of a ``[*]`` alias is always an array (of one inside ``where``);
* ``value`` and ``field`` may be template expressions: ``[parameters('x')]``,
  ``[concat(...)]``, ``[if(...)]``, ``[split(...)]`` and so on.

The evidence (the concrete paths and values consulted) explains a verdict.
``tests/test_fast_path.py`` checks that the fast path, its closures and the full
evidence path (``CompiledRule.reference``) always agree.

The modules follow the language, each importing only those above it:

* ``paths``: errors, ``MISSING``, alias paths, reading fields, frames and contexts;
* ``values``: equality, ordering, ``like``/``match``, ``contains``, ``in``;
* ``functions``: the template functions (``FUNCTIONS``);
* ``expressions``: the template expression compiler;
* ``operators``: condition operators, and their fast form with a constant operand;
* ``evidence``: what a verdict is explained with;
* ``codegen``: the fast path's generated Python;
* ``conditions``: conditions and counts, ``compile_rule``, ``CompiledRule``;
* ``applicability``: which resources a rule applies to, as Azure decides it (a rewrite of the rule).

What the rest of the project uses is named below; nothing else is imported from outside the
package. Two public submodules are imported by name because they are heavy and only some callers
need them: ``shared.policy.aliases`` (the alias snapshot) and ``shared.policy.importing`` (Azure
Policy definitions and initiatives into controls). This module imports neither.
"""
from .applicability import IF_NOT_EXISTS_EFFECTS, applicability_condition, only_type_tests, possible_types
from .conditions import CompiledRule, compile_rule
from .expressions import compile_value, is_expression, unescape_literal
from .functions import FUNCTIONS as TEMPLATE_FUNCTIONS
from .paths import (CURRENT_API_VERSION, MISSING, WILDCARD, EvaluationError, FieldResolver, Frame, KeyIndex, RuleError,
                    format_path, locate, parse_path)

__all__ = ["CURRENT_API_VERSION", "IF_NOT_EXISTS_EFFECTS", "MISSING", "TEMPLATE_FUNCTIONS", "WILDCARD", "CompiledRule",
           "EvaluationError", "FieldResolver", "Frame", "KeyIndex", "RuleError", "applicability_condition",
           "compile_rule", "compile_value", "format_path", "is_expression", "locate", "only_type_tests", "parse_path",
           "possible_types", "unescape_literal"]
