"""shared.policy: the Azure Policy rule language, operator by operator.

A rule's result is the policy ``if``: True means "the condition matched"
(for a control, non-compliant).
"""
from __future__ import annotations

import copy

import pytest

from shared.policy import EvaluationError, FieldResolver, RuleError, compile_rule

ALIASES = {
    "Test/things/flag": "properties.flag",
    "Test/things/text": "properties.text",
    "Test/things/code": "properties.code",
    "Test/things/count": "properties.count",
    "Test/things/ratio": "properties.ratio",
    "Test/things/created": "properties.created",
    "Test/things/range": "properties.range",
    "Test/things/list": "properties.list",
    "Test/things/list[*]": "properties.list[*]",
    "Test/things/empty[*]": "properties.empty[*]",
    "Test/things/map": "properties.map",
    "Test/things/absent": "properties.absent",
    "Test/things/absent[*]": "properties.absent[*]",
    "Test/things/rules[*]": "properties.rules[*]",
    "Test/things/rules[*].name": "properties.rules[*].name",
    "Test/things/rules[*].port": "properties.rules[*].port",
    "Test/things/rules[*].enabled": "properties.rules[*].enabled",
    "Test/things/rules[*].ports[*]": "properties.rules[*].ports[*]",
}
RESOLVER = FieldResolver(ALIASES)

THING = {
    "id": "/subscriptions/7d2f4b1e-3c5a-4e8b-9f60-1a2b3c4d5e6f/resourceGroups/rg/providers/Test/things/thing-01",
    "name": "thing-01",
    "type": "Test/things",
    "location": "westeurope",
    "tags": {"Owner": "team-a", "env": "prod", "app.name": "billing"},
    "properties": {
        "flag": True,
        "text": "Hello World",
        "code": "AB-123",
        "count": 5,
        "ratio": 2.5,
        "created": "2024-03-15T10:00:00Z",
        "range": "10-20",
        "list": ["alpha", "Beta", "gamma"],
        "empty": [],
        "map": {"KeyOne": 1, "keyTwo": "x"},
        "rules": [
            {"name": "web", "port": 443, "ports": ["80", "443"], "enabled": True},
            {"name": "ssh", "port": 22, "ports": ["22"], "enabled": False},
            {"name": "db", "port": 5432, "ports": ["6432", "7432"], "enabled": True},
        ],
    },
}


def run(rule, resource=THING, parameters=None):
    """(matched, evidence), with the evidence described whatever the verdict."""
    return compile_rule(rule, parameters or {}, RESOLVER).evaluate(copy.deepcopy(resource), evidence=True)


def matches(rule, resource=THING, parameters=None) -> bool:
    return run(rule, resource, parameters)[0]


def field(alias, op, value):
    return {"field": f"Test/things/{alias}", op: value}


# --------------------------------------------------------------------------- operators

OPERATOR_CASES = [
    # equals / notEquals: strings case-insensitive, booleans against "true"/"false"
    ("equals: case-insensitive", field("text", "equals", "hello WORLD"), True),
    ("equals: different", field("text", "equals", "hello"), False),
    ("equals: bool vs 'true'", field("flag", "equals", "true"), True),
    ("equals: bool vs 'True'", field("flag", "equals", "True"), True),
    ("equals: bool vs true", field("flag", "equals", True), True),
    ("equals: bool vs 'false'", field("flag", "equals", "false"), False),
    ("equals: number", field("count", "equals", 5), True),
    ("equals: array", field("list", "equals", ["ALPHA", "beta", "Gamma"]), True),
    ("notEquals: same text other case", field("text", "notEquals", "HELLO WORLD"), False),
    ("notEquals: different", field("text", "notEquals", "bye"), True),
    ("notEquals: bool vs 'false'", field("flag", "notEquals", "false"), True),
    # like / notLike: '*' wildcard, case-insensitive
    ("like: prefix", field("text", "like", "hello*"), True),
    ("like: suffix", field("text", "like", "*WORLD"), True),
    ("like: exact", field("text", "like", "hello world"), True),
    ("like: no match", field("text", "like", "*xyz*"), False),
    ("like: regex characters are literal", field("code", "like", "AB.*"), False),
    ("notLike: no match", field("text", "notLike", "bye*"), True),
    ("notLike: match", field("text", "notLike", "h*"), False),
    # match: '#' digit, '?' letter, '.' any character, anything else literal; case-sensitive
    ("match: pattern", field("code", "match", "??-###"), True),
    ("match: '.' is any character", field("code", "match", ".B-1.3"), True),
    ("match: literal case matters", field("code", "match", "ab-###"), False),
    ("match: whole value", field("code", "match", "??-##"), False),
    ("match: '?' is a letter, not a digit", field("code", "match", "??-?##"), False),
    ("matchInsensitively", field("code", "matchInsensitively", "ab-###"), True),
    ("notMatch: matching value", field("code", "notMatch", "??-###"), False),
    ("notMatch: other case", field("code", "notMatch", "ab-###"), True),
    ("notMatchInsensitively", field("code", "notMatchInsensitively", "ab-###"), False),
    # contains / notContains: substring of a string, element of an array
    ("contains: substring, any case", field("text", "contains", "WORLD"), True),
    ("contains: substring missing", field("text", "contains", "xyz"), False),
    ("contains: array element, any case", field("list", "contains", "beta"), True),
    ("contains: part of an element is not an element", field("list", "contains", "bet"), False),
    ("notContains: array", field("list", "notContains", "delta"), True),
    ("notContains: string", field("text", "notContains", "lo w"), False),
    # in / notIn
    ("in: any case", field("text", "in", ["x", "HELLO WORLD"]), True),
    ("in: number", field("count", "in", [1, 2]), False),
    ("notIn: absent", field("text", "notIn", ["a", "b"]), True),
    ("notIn: present", field("text", "notIn", ["hello world"]), False),
    # containsKey / notContainsKey: key names any case
    ("containsKey", field("map", "containsKey", "keyone"), True),
    ("containsKey: absent", field("map", "containsKey", "three"), False),
    ("notContainsKey: absent", field("map", "notContainsKey", "three"), True),
    ("notContainsKey: present", field("map", "notContainsKey", "KEYTWO"), False),
    # ordering: numbers
    ("less", field("count", "less", 6), True),
    ("less: equal", field("count", "less", 5), False),
    ("lessOrEquals: equal", field("count", "lessOrEquals", 5), True),
    ("lessOrEquals: smaller", field("count", "lessOrEquals", 4), False),
    ("greater", field("count", "greater", 4), True),
    ("greater: float", field("ratio", "greater", 2), True),
    ("greater: equal", field("count", "greater", 5), False),
    ("greaterOrEquals: equal", field("count", "greaterOrEquals", 5), True),
    ("greaterOrEquals: larger", field("count", "greaterOrEquals", 6), False),
    # ordering: ISO dates
    ("greater: date-time", field("created", "greater", "2024-01-01T00:00:00Z"), True),
    ("less: date-time one second earlier", field("created", "less", "2024-03-15T09:59:59Z"), False),
    ("lessOrEquals: same instant", field("created", "lessOrEquals", "2024-03-15T10:00:00+00:00"), True),
    ("greater: same instant other zone", field("created", "greater", "2024-03-15T11:00:00+01:00"), False),
    ("greater: against a date", field("created", "greater", "2024-01-01"), True),
    ("less: against a date", field("created", "less", "2024-03-15"), False),
    # exists
    ("exists true: present", field("text", "exists", True), True),
    ("exists 'true': present", field("text", "exists", "true"), True),
    ("exists false: present", field("text", "exists", "false"), False),
    ("exists true: missing", field("absent", "exists", True), False),
    ("exists false: missing", field("absent", "exists", False), True),
]


@pytest.mark.parametrize("rule, expected", [c[1:] for c in OPERATOR_CASES], ids=[c[0] for c in OPERATOR_CASES])
def test_operator(rule, expected):
    assert matches(rule) is expected


def test_operator_names_are_case_insensitive():
    assert matches({"FIELD": "Test/things/text", "EQUALS": "hello world"})
    assert matches({"field": "test/THINGS/text", "equals": "hello world"})


# --------------------------------------------------------------------------- missing fields

MISSING_CASES = [
    # negative operators are true for a missing field, positive ones false
    ("equals", "x", False), ("notEquals", "x", True),
    ("like", "*", False), ("notLike", "x*", True),
    ("match", "#", False), ("notMatch", "#", True),
    ("matchInsensitively", "?", False), ("notMatchInsensitively", "?", True),
    ("contains", "x", False), ("notContains", "x", True),
    ("in", ["x"], False), ("notIn", ["x"], True),
    ("containsKey", "x", False), ("notContainsKey", "x", True),
    ("less", 1, False), ("lessOrEquals", 1, False), ("greater", 1, False), ("greaterOrEquals", 1, False),
]


@pytest.mark.parametrize("op, value, expected", MISSING_CASES, ids=[c[0] for c in MISSING_CASES])
def test_missing_field(op, value, expected):
    assert matches(field("absent", op, value)) is expected


def test_null_value_counts_as_missing():
    resource = copy.deepcopy(THING)
    resource["properties"]["text"] = None
    assert matches(field("text", "exists", False), resource)
    assert matches(field("text", "notEquals", "x"), resource)
    assert not matches(field("text", "equals", "x"), resource)


# --------------------------------------------------------------------------- [*] outside count

ARRAY_CASES = [
    ("all elements satisfy", field("rules[*].port", "greater", 20), True),
    ("one element fails", field("rules[*].port", "greater", 100), False),
    ("negative operator over all", field("rules[*].name", "notEquals", "telnet"), True),
    ("negative operator, one equal", field("rules[*].name", "notEquals", "SSH"), False),
    ("element in list", field("list[*]", "in", ["alpha", "beta", "gamma"]), True),
    ("nested arrays flatten: one port has three digits", field("rules[*].ports[*]", "match", "##"), False),
    ("nested arrays flatten: no port is 3389", field("rules[*].ports[*]", "notEquals", "3389"), True),
    ("empty array is vacuously true", field("empty[*]", "equals", "never"), True),
]


@pytest.mark.parametrize("rule, expected", [c[1:] for c in ARRAY_CASES], ids=[c[0] for c in ARRAY_CASES])
def test_wildcard_outside_count(rule, expected):
    assert matches(rule) is expected


def test_wildcard_evidence_lists_each_element():
    matched, evidence = run(field("rules[*].port", "greater", 100))
    assert not matched
    (record,) = evidence
    assert record["result"] is False
    assert record["actual"] == [
        {"path": "properties.rules[0].port", "value": 443},
        {"path": "properties.rules[1].port", "value": 22},
        {"path": "properties.rules[2].port", "value": 5432},
    ]


def test_evidence_is_described_only_when_the_rule_matches_by_default():
    rule = compile_rule(field("rules[*].port", "greater", 100), {}, RESOLVER)
    assert rule.evaluate(copy.deepcopy(THING)) == (False, [])
    matched, evidence = compile_rule(field("rules[*].port", "greater", 1), {}, RESOLVER).evaluate(THING)
    assert matched and evidence[0]["result"] is True


# --------------------------------------------------------------------------- count

RULES = "Test/things/rules[*]"
PORTS = "Test/things/rules[*].ports[*]"

COUNT_CASES = [
    ("field count without where", {"count": {"field": RULES}, "equals": 3}, True),
    ("field count with where",
     {"count": {"field": RULES, "where": {"field": "Test/things/rules[*].port", "less": 1000}}, "equals": 2}, True),
    ("where on a boolean",
     {"count": {"field": RULES, "where": {"field": "Test/things/rules[*].enabled", "equals": False}}, "equals": 1},
     True),
    ("where with allOf",
     {"count": {"field": RULES, "where": {"allOf": [
         {"field": "Test/things/rules[*].enabled", "equals": True},
         {"field": "Test/things/rules[*].port", "greater": 1000}]}}, "equals": 1}, True),
    ("count over a missing array is zero", {"count": {"field": "Test/things/absent[*]"}, "equals": 0}, True),
    ("count of a nested array over all parents", {"count": {"field": PORTS}, "equals": 5}, True),
    ("nested count",
     {"count": {"field": RULES, "where": {
         "count": {"field": PORTS, "where": {"field": PORTS, "equals": "443"}}, "greater": 0}}, "equals": 1}, True),
    ("nested count: current() of the outer and inner element",
     {"count": {"field": RULES, "where": {
         "count": {"field": PORTS, "where": {
             "value": f"[current('{PORTS}')]",
             "equals": "[string(current('Test/things/rules[*].port'))]"}},
         "greater": 0}}, "equals": 2}, True),
    ("[*] of the counted element's own array inside where means all of them",
     {"count": {"field": RULES, "where": {"field": PORTS, "notEquals": "22"}}, "equals": 2}, True),
    ("value count with name",
     {"count": {"value": ["a", "b", "c"], "name": "letter",
                "where": {"value": "[current('letter')]", "in": ["a", "c"]}}, "equals": 2}, True),
    ("value count with current() and no name",
     {"count": {"value": [1, 5, 10], "where": {"value": "[current()]", "greater": 3}}, "equals": 2}, True),
    ("value count without where", {"count": {"value": "[parameters('names')]"}, "equals": 3}, True),
    ("value count against all array elements",  # only 'ftp' differs from every rule name
     {"count": {"value": "[parameters('names')]", "name": "n",
                "where": {"field": "Test/things/rules[*].name", "notEquals": "[current('n')]"}}, "equals": 1}, True),
    ("value count over tags via field()",
     {"count": {"value": "[parameters('tagNames')]", "name": "tagName",
                "where": {"field": "[concat('tags[', current('tagName'), ']')]", "exists": False}},
      "greater": 0}, True),
    ("value count over tags, all present",
     {"count": {"value": ["owner", "ENV"], "name": "tagName",
                "where": {"field": "[concat('tags[', current('tagName'), ']')]", "exists": False}},
      "greater": 0}, False),
]


@pytest.mark.parametrize("rule, expected", [c[1:] for c in COUNT_CASES], ids=[c[0] for c in COUNT_CASES])
def test_count(rule, expected):
    params = {"names": ["web", "ftp", "ssh"], "tagNames": ["owner", "costCenter"]}
    assert matches(rule, parameters=params) is expected


def test_count_evidence_names_the_matching_element():
    rule = {"count": {"field": RULES, "where": {"field": "Test/things/rules[*].name", "equals": "ssh"}}, "greater": 0}
    matched, evidence = run(rule)
    assert matched
    (record,) = evidence  # conditions inside 'where' are not recorded one by one
    assert record["count"] == RULES
    assert record["matchedCount"] == 1
    assert record["matched"] == [{"path": "properties.rules[1]", "value": THING["properties"]["rules"][1]}]
    assert record["result"] is True


def test_value_count_evidence_names_the_values():
    rule = {"count": {"value": ["owner", "costCenter", "env"], "name": "t",
                      "where": {"field": "[concat('tags[', current('t'), ']')]", "exists": False}}, "greater": 0}
    matched, evidence = run(rule)
    assert matched
    assert evidence[0]["matched"] == [{"path": "value[1]", "value": "costCenter"}]


# --------------------------------------------------------------------------- template expressions

EXPRESSION_CASES = [
    ("parameters()", {"field": "Test/things/text", "equals": "[parameters('greeting')]"}, True),
    ("parameter names any case", {"value": "[parameters('GREETING')]", "equals": "hello world"}, True),
    ("concat strings and numbers", {"value": "[concat('a', 'b', 1)]", "match": "ab1"}, True),
    ("concat arrays", {"value": "[concat(parameters('ports'), createArray('8080'))]", "equals": ["22", "3389", "8080"]},
     True),
    ("toLower", {"value": "[toLower(field('Test/things/text'))]", "match": "hello world"}, True),
    ("toUpper", {"value": "[toUpper('abc')]", "match": "ABC"}, True),
    ("if true branch", {"value": "[if(equals(1, 1), 'yes', 'no')]", "equals": "yes"}, True),
    ("if false branch", {"value": "[if(greater(1, 2), 'yes', 'no')]", "equals": "no"}, True),
    ("if only evaluates the branch it takes",
     {"value": "[if(equals(field('Test/things/count'), 5), 'ok', int('not a number'))]", "equals": "ok"}, True),
    ("length of an array field", {"value": "[length(field('Test/things/list'))]", "equals": 3}, True),
    ("length of a string", {"value": "[length('abcd')]", "equals": 4}, True),
    ("length of a missing field", {"value": "[length(field('Test/things/absent'))]", "equals": 0}, True),
    ("split", {"value": "[split(field('Test/things/range'), '-')]", "equals": ["10", "20"]}, True),
    ("first of split", {"value": "[first(split(field('Test/things/range'), '-'))]", "equals": "10"}, True),
    ("last of split", {"value": "[last(split(field('Test/things/range'), '-'))]", "equals": "20"}, True),
    ("int for numeric comparison", {"value": "[int(last(split(field('Test/things/range'), '-')))]", "greater": 15},
     True),
    ("contains() on an array", {"value": "[contains(field('Test/things/list'), 'gamma')]", "equals": True}, True),
    ("contains() on a string", {"value": "[contains(field('Test/things/text'), 'World')]", "equals": True}, True),
    # ARM template contains() compares strings case-sensitively (only object keys are case-insensitive)
    ("contains() on a string is case-sensitive",
     {"value": "[contains('OneTwoThree', 'two')]", "equals": False}, True),
    ("contains() on an object key is case-insensitive",
     {"value": "[contains(field('Test/things/map'), 'keyone')]", "equals": True}, True),
    ("field() of an array element", {"value": "[field('Test/things/rules[*].name')]", "equals": ["web", "ssh", "db"]},
     True),
    ("property access", {"value": "[parameters('settings').mode]", "equals": "strict"}, True),
    ("index access", {"value": "[parameters('ports')[1]]", "equals": "3389"}, True),
    ("string() of a number", {"value": "[string(field('Test/things/count'))]", "match": "5"}, True),
    ("and/or/not", {"value": "[and(true, or(false, not(false)))]", "equals": True}, True),
    ("startsWith is case-insensitive", {"value": "[startsWith('Hello', 'he')]", "equals": True}, True),
    ("escaped literal is not an expression", {"value": "[[x]", "equals": "[concat('[', 'x]')]"}, True),
    ("expression as field name", {"field": "[concat('Test/things/', 'text')]", "equals": "hello world"}, True),
]


@pytest.mark.parametrize("rule, expected", [c[1:] for c in EXPRESSION_CASES], ids=[c[0] for c in EXPRESSION_CASES])
def test_template_expression(rule, expected):
    params = {"greeting": "HELLO WORLD", "ports": ["22", "3389"], "settings": {"mode": "strict"}}
    assert matches(rule, parameters=params) is expected


def test_expression_field_is_read_per_resource():
    rule = {"value": "[toLower(field('Test/things/text'))]", "equals": "bye"}
    compiled = compile_rule(rule, {}, RESOLVER)
    other = copy.deepcopy(THING)
    other["properties"]["text"] = "BYE"
    assert compiled.evaluate(other)[0] is True
    assert compiled.evaluate(THING)[0] is False


# --------------------------------------------------------------------------- tags and built-in fields

TAG_CASES = [
    ("tags['k']", {"field": "tags['owner']", "equals": "team-a"}, True),  # stored as 'Owner'
    ("tags.k", {"field": "tags.env", "equals": "prod"}, True),
    ("tags[k]", {"field": "tags[env]", "equals": "prod"}, True),
    ("tag name with a dot", {"field": "tags['app.name']", "equals": "billing"}, True),
    ("missing tag exists false", {"field": "tags['costCenter']", "exists": False}, True),
    ("missing tag notEquals", {"field": "tags.costCenter", "notEquals": "x"}, True),
    ("tags containsKey", {"field": "tags", "containsKey": "ENV"}, True),
    ("name", {"field": "name", "like": "thing-*"}, True),
    ("type", {"field": "type", "equals": "test/things"}, True),
    ("location", {"field": "location", "in": ["westeurope", "northeurope"]}, True),
    ("fullName", {"field": "fullName", "equals": "thing-01"}, True),
    ("kind missing", {"field": "kind", "exists": False}, True),
]


@pytest.mark.parametrize("rule, expected", [c[1:] for c in TAG_CASES], ids=[c[0] for c in TAG_CASES])
def test_tags_and_builtin_fields(rule, expected):
    assert matches(rule) is expected


def test_tag_evidence_has_the_concrete_path():
    _, evidence = run({"field": "tags['app.name']", "equals": "billing"})
    assert evidence == [{"field": "tags['app.name']", "path": "tags['app.name']", "actual": "billing",
                         "operator": "equals", "result": True}]


# --------------------------------------------------------------------------- logical operators

T = field("text", "equals", "hello world")
F = field("text", "equals", "nope")

LOGIC_CASES = [
    ("allOf all true", {"allOf": [T, T]}, True),
    ("allOf one false", {"allOf": [T, F]}, False),
    ("anyOf one true", {"anyOf": [F, T]}, True),
    ("anyOf all false", {"anyOf": [F, F]}, False),
    ("not true", {"not": T}, False),
    ("not false", {"not": F}, True),
    ("nested", {"allOf": [T, {"not": {"anyOf": [F, {"allOf": [F, T]}]}}]}, True),
]


@pytest.mark.parametrize("rule, expected", [c[1:] for c in LOGIC_CASES], ids=[c[0] for c in LOGIC_CASES])
def test_logical_operators(rule, expected):
    assert matches(rule) is expected


def test_evidence_records_concrete_path_and_value():
    matched, evidence = run({"allOf": [field("count", "greater", 1), field("absent", "exists", False)]})
    assert matched
    assert evidence == [
        {"field": "Test/things/count", "path": "properties.count", "actual": 5, "operator": "greater", "result": True},
        {"field": "Test/things/absent", "path": "properties.absent", "actual": None, "operator": "exists",
         "result": True},
    ]


# --------------------------------------------------------------------------- errors

COMPILE_ERRORS = [
    ("unknown alias", {"field": "Test/things/nope", "equals": 1}, "unknown field or alias 'Test/things/nope'"),
    ("unknown alias in count", {"count": {"field": "Test/things/nope[*]"}, "equals": 1}, "Test/things/nope[*]"),
    ("unknown alias in field()", {"value": "[field('Test/things/nope')]", "equals": 1}, "Test/things/nope"),
    ("unknown operator key", {"field": "Test/things/text", "equal": "x"}, "unknown key(s) 'equal'"),
    ("two operators", {"field": "Test/things/text", "equals": "x", "notEquals": "y"}, "exactly one operator"),
    ("no operator", {"field": "Test/things/text"}, "exactly one operator"),
    ("field and value", {"field": "Test/things/text", "value": "x", "equals": "x"},
     "exactly one of 'field', 'value' or 'count'"),
    ("bad expression", {"value": "[concat('a', ]", "equals": "a"}, "[concat('a', ]"),
    ("unclosed string", {"value": "[concat('a)]", "equals": "a"}, "cannot parse expression"),
    ("unknown function", {"value": "[frobnicate(1)]", "equals": 1}, "unsupported template function 'frobnicate'"),
    ("unknown parameter", {"value": "[parameters('nope')]", "equals": 1}, "unknown parameter 'nope'"),
    ("if with two arguments", {"value": "[if(true, 1)]", "equals": 1}, "if() takes three arguments"),
    ("count field not an array", {"count": {"field": "Test/things/text"}, "equals": 1}, "must be an array alias"),
    ("count with unknown key", {"count": {"field": RULES, "filter": {}}, "equals": 1}, "unknown key(s)"),
    ("empty allOf", {"allOf": []}, "non-empty list"),
    ("not with a sibling", {"not": T, "field": "name"}, "'not' must be the only key"),
    ("condition not an object", {"anyOf": [T, "text"]}, "rule.anyOf[1]: a condition must be an object"),
]


@pytest.mark.parametrize("rule, message", [c[1:] for c in COMPILE_ERRORS], ids=[c[0] for c in COMPILE_ERRORS])
def test_compile_error(rule, message):
    with pytest.raises(RuleError) as info:
        compile_rule(rule, {"known": 1}, RESOLVER)
    assert message in str(info.value)


RUNTIME_ERRORS = [
    ("int() of a non-number field", {"value": "[int(field('Test/things/text'))]", "equals": 1}, "int()"),
    ("in with a non-array", {"field": "Test/things/text", "in": "[field('Test/things/code')]"}, "needs an array"),
    ("index out of range", {"value": "[field('Test/things/list')[7]]", "equals": 1}, "out of range"),
    ("count value not an array", {"count": {"value": "[field('Test/things/text')]"}, "equals": 1}, "must be an array"),
    ("dynamic field name unknown", {"field": "[concat('Test/things/', 'nope')]", "equals": 1}, "unknown field"),
    ("current() outside count", {"value": "[current('x')]", "equals": 1}, "outside a count"),
]


@pytest.mark.parametrize("rule, message", [c[1:] for c in RUNTIME_ERRORS], ids=[c[0] for c in RUNTIME_ERRORS])
def test_runtime_error(rule, message):
    compiled = compile_rule(rule, {}, RESOLVER)  # compiles fine: the failure depends on the resource
    with pytest.raises(EvaluationError) as info:
        compiled.evaluate(THING)
    assert message in str(info.value)


def test_a_constant_expression_that_always_fails_is_a_compile_error():
    with pytest.raises(RuleError, match=r"always fails: int\(\) of 'abc'"):
        compile_rule({"value": "[int('abc')]", "equals": 1}, {}, RESOLVER)
