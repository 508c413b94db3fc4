"""The fast path (verdict only) and the evidence path always agree on the verdict. Property-based.

Three evaluations of every rule are compared on generated resources: the generated Python
function (``CompiledRule.matches``), the closures it was generated beside
(``condition.closures``) and the reference (``CompiledRule.reference``: every condition, inside
counts too, through the evidence path). The fast path may stop a count once its verdict is
decided, so where the reference fails on a later element the fast path may still answer.
"""
from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import mix
from shared.catalog import load_catalog
from shared.policy import EvaluationError, Frame, compile_rule
from tests.test_policy_engine import RESOLVER, THING

CATALOG = load_catalog()
NSG_TYPE = "microsoft.network/networksecuritygroups"
NSG_CONTROLS = [c for c in CATALOG.controls if NSG_TYPE in c.resource_types]


def outcome(fn, *args):
    try:
        return fn(*args)
    except EvaluationError:
        return "error"


def assert_agree(rule, resource) -> None:
    reference = outcome(lambda: rule.reference(resource)[0])
    generated = outcome(rule.matches, resource)
    shared_index = {}  # as Catalog.evaluate shares it between the rules of one resource
    indexed = [outcome(rule.matches, resource, shared_index) for _ in range(2)]
    assert indexed == [generated, generated]
    closures = outcome(rule.condition.closures, Frame((resource,)))
    default = outcome(lambda: rule.evaluate(resource)[0])
    described = outcome(lambda: rule.evaluate(resource, evidence=True))
    assert outcome(lambda: rule.evaluate(resource, evidence=True, index=shared_index)) == described
    if reference == "error":  # a decided count may stop before the element that fails
        assert generated == closures
        return
    assert generated == reference, (generated, reference)
    assert closures == reference
    assert default == reference
    if described != "error" and described[0]:  # what a count matched, found in one generated loop, is the same
        assert described == rule.reference(resource), (described, rule.reference(resource))


# ------------------------------------------------------------------ NSG rules as people write them

port = st.integers(min_value=0, max_value=65535)
port_text = st.one_of(
    port.map(str),
    st.tuples(port, port).map(lambda t: f"{min(t)}-{max(t)}"),
    st.sampled_from(["*", "22", "3389", "20-30", "1-65535", "0-65535", "21-23", "3388-3390", "5985-5986", "1433"]),
)
bad_port_text = st.sampled_from(["http", "80-x", "-", "", " 22", "22-"])  # rules fail on these: both paths must
port_text = st.one_of(port_text, port_text, port_text, bad_port_text)
source = st.one_of(
    st.sampled_from(["*", "Internet", "internet", "INTERNET", "Any", "0.0.0.0/0", "::/0", "VirtualNetwork",
                     "AzureLoadBalancer", "AzureFrontDoor.Backend", "GatewayManager", "Storage.WestEurope"]),
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 32)).map(lambda t: f"10.{t[0]}.{t[1]}.0/{t[2]}"),
    st.sampled_from(["203.0.113.17", "198.51.100.0/24", "2001:db8::/32", "10.0.0.0/8"]),
)
MAYBE = object()


@st.composite
def security_rule(draw):
    props = {
        "protocol": draw(st.sampled_from(["Tcp", "tcp", "Udp", "*", "Icmp", "Esp", "Ah"])),
        "access": draw(st.sampled_from(["Allow", "allow", "Deny"])),
        "direction": draw(st.sampled_from(["Inbound", "inbound", "Outbound"])),
        "priority": draw(st.integers(100, 4096)),
        "sourcePortRange": "*",
    }
    # what ARM returns: a single value or a list (the other one absent or empty), sometimes neither
    if draw(st.booleans()):
        props["sourceAddressPrefix"] = draw(source)
    if draw(st.booleans()):
        props["sourceAddressPrefixes"] = draw(st.lists(source, max_size=4))
    if draw(st.booleans()):
        props["destinationPortRange"] = draw(port_text)
    if draw(st.booleans()):
        props["destinationPortRanges"] = draw(st.lists(port_text, max_size=5))
    key = draw(st.sampled_from(["properties", "Properties"]))  # names are case-insensitive
    return {"name": draw(st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)), key: props}


nsg = st.lists(security_rule(), max_size=20).map(lambda rules: {
    "id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
          "Microsoft.Network/networkSecurityGroups/nsg-generated",
    "name": "nsg-generated", "type": "Microsoft.Network/networkSecurityGroups", "location": "westeurope",
    "properties": {"securityRules": rules},
})


@pytest.mark.parametrize("control", NSG_CONTROLS, ids=[c.id for c in NSG_CONTROLS])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(resource=nsg)
def test_nsg_controls_agree_on_generated_groups(control, resource):
    assert_agree(control.rule, resource)


def test_the_generated_groups_reach_both_verdicts():
    """The strategy above is worth running: it produces open and closed groups for each control."""
    seen = {c.id: set() for c in NSG_CONTROLS}

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(resource=nsg)
    def collect(resource):
        for c in NSG_CONTROLS:
            seen[c.id].add(outcome(lambda: c.rule.reference(resource)[0]))

    collect()
    assert all({True, False} <= v for cid, v in seen.items() if cid != "nsg-flow-logs-retention"), seen


# ------------------------------------------------------------------ every catalog control on the fixtures, mutated

FIXTURE_CASES = [(c, r) for r in mix.templates() for c in CATALOG.controls if c.applies_to(r)]


@pytest.mark.parametrize("control, resource", FIXTURE_CASES, ids=[f"{c.id}:{r['name']}" for c, r in FIXTURE_CASES])
def test_every_control_agrees_on_the_realistic_mix(control, resource):
    assert_agree(control.rule, resource)


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-3, 70000), st.sampled_from(
    ["", "*", "true", "False", "Enabled", "disabled", "TLS1_2", "1.2", "22", "10-20", "Allow", "Internet", "abc"]))


@st.composite
def mutated_fixture(draw):
    """A mix resource with a few properties replaced by other JSON values (or removed)."""
    resource = copy.deepcopy(draw(st.sampled_from([r for _, r in FIXTURE_CASES])))
    props = resource.get("properties")
    if isinstance(props, dict) and props:
        for key in draw(st.lists(st.sampled_from(sorted(props)), max_size=4, unique=True)):
            if draw(st.booleans()):
                del props[key]
            else:
                props[key] = draw(st.one_of(json_leaf, st.lists(json_leaf, max_size=3)))
    return resource


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(resource=mutated_fixture())
def test_every_applicable_control_agrees_on_mutated_resources(resource):
    for control in CATALOG.controls:
        if control.applies_to(resource):
            assert_agree(control.rule, resource)


# ------------------------------------------------------------------ generated rules over the engine test schema

SCALAR_FIELDS = ["Test/things/flag", "Test/things/text", "Test/things/code", "Test/things/count", "Test/things/ratio",
                 "Test/things/range", "Test/things/absent", "Test/things/list[*]", "name", "type", "tags.env"]
INNER_FIELDS = ["Test/things/rules[*].name", "Test/things/rules[*].port", "Test/things/rules[*].enabled",
                "Test/things/rules[*].ports[*]"]
OPERATORS = ["equals", "notEquals", "like", "notLike", "contains", "notContains", "in", "notIn", "less",
             "lessOrEquals", "greater", "greaterOrEquals", "exists", "containsKey", "notContainsKey"]
operand_leaf = st.one_of(st.booleans(), st.integers(-5, 6000), st.sampled_from(
    ["hello world", "HELLO*", "*", "ab-123", "22", "443", "web", "SSH", "prod", "alpha", "Test/things", "10-20"]))


def operand_for(op):
    if op in ("in", "notIn"):
        return st.lists(operand_leaf, max_size=4)
    if op == "exists":
        return st.booleans()
    return operand_leaf


@st.composite
def leaf(draw, fields):
    op = draw(st.sampled_from(OPERATORS))
    return {"field": draw(st.sampled_from(fields)), op: draw(operand_for(op))}


def conditions(fields, depth):
    base = leaf(fields)
    if depth == 0:
        return base
    inner = conditions(fields, depth - 1)
    return st.one_of(
        base,
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"allOf": xs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"anyOf": xs}),
        inner.map(lambda x: {"not": x}),
        st.builds(lambda where, op, n: {"count": {"field": "Test/things/rules[*]", "where": where}, op: n},
                  conditions(INNER_FIELDS + SCALAR_FIELDS, depth - 1),
                  st.sampled_from(["greater", "equals", "less", "greaterOrEquals", "lessOrEquals", "notEquals"]),
                  st.integers(-1, 3)),
        st.builds(lambda op, n: {"count": {"value": ["22", "443", "80"], "name": "p", "where": {
            "value": "[current('p')]", "in": "[field('Test/things/rules[*].ports[*]')]"}}, op: n},
            st.sampled_from(["greater", "equals", "less"]), st.integers(0, 3)),
    )


@st.composite
def thing(draw):
    resource = copy.deepcopy(THING)
    rules = []
    for _ in range(draw(st.integers(0, 5))):
        rule = {"name": draw(st.sampled_from(["web", "ssh", "SSH", "db", ""])), "port": draw(operand_leaf),
                "ports": draw(st.lists(st.sampled_from(["22", "80", "443", "10-20", "*"]), max_size=3)),
                "enabled": draw(st.booleans())}
        for key in draw(st.lists(st.sampled_from(sorted(rule)), max_size=2, unique=True)):
            del rule[key]
        rules.append(rule)
    resource["properties"]["rules"] = rules
    resource["properties"]["count"] = draw(operand_leaf)
    resource["properties"]["text"] = draw(operand_leaf)
    return resource


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule=conditions(SCALAR_FIELDS, 3), resource=thing())
def test_generated_rules_agree(rule, resource):
    assert_agree(compile_rule(rule, {}, RESOLVER), resource)


def test_a_function_node_without_generated_source_runs_through_its_closure(monkeypatch):
    """A template function added to ``ExpressionCompiler._call`` as a closure only (``ctx.resource``
    is the evaluated resource) works in the generated rule, in its closures and in the evidence path."""
    import shared.policy.expressions as policy

    original = policy.ExpressionCompiler._call

    def with_own_name(self, name, args):
        if name.lower() == "ownname":
            return policy._Node(lambda ctx: ctx.resource["name"], False)
        return original(self, name, args)

    monkeypatch.setattr(policy.ExpressionCompiler, "_call", with_own_name)
    rule = compile_rule({"count": {"field": "Test/things/rules[*]", "where": {
        "value": "[concat(ownname(), '/', current('Test/things/rules[*].name'))]", "equals": "thing-01/SSH"}},
        "equals": 1}, {}, RESOLVER)
    assert rule.matches(THING) is True
    assert rule.reference(THING)[0] is True
    assert rule.matches(dict(THING, name="other")) is False
    assert_agree(rule, THING)


def _recase(value):
    """The same JSON with every name spelled in another case, as ARM may return it."""
    if isinstance(value, dict):
        return {(k.upper() if i % 2 else k.lower()): _recase(v) for i, (k, v) in enumerate(value.items())}
    if isinstance(value, list):
        return [_recase(v) for v in value]
    return value


def test_names_in_another_case_give_the_same_results_and_evidence_through_the_shared_index():
    from bench import mix
    from shared.catalog import Catalog, offline_related

    group = [t for t in mix.templates() if t["type"] == mix.NSG_TYPE][5]  # an open group failing several controls
    recased = {**group, "Properties": _recase(group["properties"])}  # the type and id stay readable
    del recased["properties"]
    expected = CATALOG.evaluate(group)
    shared = CATALOG.evaluate(recased)  # one index for the controls of the evaluation, evidence pass included
    alone = [Catalog._evaluate_one(c, recased, offline_related, {}) for c in CATALOG.applicable(recased)]
    assert sum(r.status.value == "NonCompliant" for r in expected) >= 3
    assert [(r.control_id, r.status) for r in shared] == [(r.control_id, r.status) for r in expected]
    assert [(r.control_id, r.status, r.evidence) for r in shared] == [(r.control_id, r.status, r.evidence) for r in alone]


def _memos(rule):
    from shared.policy.codegen import _BoundedMemo

    return [v for v in rule.fast.__globals__.values() if isinstance(v, _BoundedMemo)]


def test_remembered_port_counts_change_no_verdict_and_stay_bounded(monkeypatch):
    from bench import mix
    from shared.policy.codegen import _BoundedMemo

    rule = next(c for c in CATALOG.controls if c.id == "nsg-no-remote-admin-ports-from-internet").rule
    groups = [t for t in mix.templates() if t["type"] == mix.NSG_TYPE]
    assert _memos(rule), "the port-range count over the ports parameter is remembered"
    for memo in _memos(rule):
        memo.clear()
    cold = [rule.matches(g) for g in groups]
    assert any(_memos(rule)) and True in cold and False in cold
    warm = [rule.matches(g) for g in groups]
    assert warm == cold == [rule.reference(g)[0] for g in groups]
    monkeypatch.setattr(_BoundedMemo, "limit", 2)
    for memo in _memos(rule):
        memo.clear()
    assert [rule.matches(g) for g in groups] == cold  # emptied over and over on the way
    assert all(len(memo) <= 2 for memo in _memos(rule))


def test_a_remembered_count_is_keyed_by_what_it_reads_from_outside():
    rule = compile_rule({"count": {"value": [1, 2, 3], "name": "n", "where": {
        "value": "[add(current('n'), length(field('Test/things/list[*]')))]", "greater": 4}}, "greater": 0},
        {}, RESOLVER)
    assert _memos(rule)
    with_two = {**THING, "properties": {**THING["properties"], "list": [1, 2]}}
    empty = {**THING, "properties": {**THING["properties"], "list": []}}
    assert [rule.matches(r) for r in (with_two, empty, with_two, empty)] == [True, False, True, False]


def test_a_count_that_reads_a_field_of_the_resource_itself_is_not_remembered():
    rule = compile_rule({"count": {"value": [1, 2, 3], "name": "n", "where": {"allOf": [
        {"value": "[add(current('n'), length(field('Test/things/list[*]')))]", "greater": 1},
        {"field": "Test/things/flag", "equals": True}]}}, "greater": 0}, {}, RESOLVER)
    assert not _memos(rule)
    on = {**THING, "properties": {**THING["properties"], "flag": True, "list": []}}
    off = {**THING, "properties": {**THING["properties"], "flag": False, "list": []}}
    assert [rule.matches(r) for r in (on, off, on)] == [True, False, True]


def test_a_quoted_object_is_measured_once_per_evaluation_and_cut_short_alike(monkeypatch):
    import shared.policy.evidence as policy
    from bench import mix
    from shared.catalog import offline_related

    group = copy.deepcopy([t for t in mix.templates() if t["type"] == mix.NSG_TYPE][5])
    first = group["properties"]["securityRules"][0]
    first["properties"]["description"] = "x" * 3000  # its repr is over the limit: quoted as cut-short text
    alone = [CATALOG._evaluate_one(c, group, offline_related, {}) for c in CATALOG.applicable(group)]
    measured, real = [], policy._quoted
    monkeypatch.setattr(policy, "_quoted", lambda v: measured.append(id(v)) or real(v))
    shared = CATALOG.evaluate(group)
    assert [(r.control_id, r.status, r.evidence) for r in shared] == [(r.control_id, r.status, r.evidence) for r in alone]
    cut = [m["value"] for r in shared for e in r.evidence for m in e.get("matched", []) if m["path"].endswith("[0]")]
    assert len(cut) >= 2 and all(isinstance(v, str) and v.endswith("...(truncated)") for v in cut)
    assert len(measured) == len(set(measured))  # each object once, though several controls quote it


def test_a_remembered_count_is_keyed_by_the_values_it_reads_and_computes_the_rest_only_when_new():
    rule = next(c for c in CATALOG.controls if c.id == "nsg-no-remote-admin-ports-from-internet").rule
    assert "_memo_key(l" in rule.fast.source  # keyed by the security rule's port range as read, not by what is computed from it
    groups = [t for t in mix.templates() if t["type"] == mix.NSG_TYPE]
    for memo in _memos(rule):
        memo.clear()
    assert [rule.matches(g) for g in groups] == [rule.matches(g) for g in groups] == \
        [rule.reference(g)[0] for g in groups]


def test_a_count_computing_from_the_clock_is_keyed_by_what_it_computed(monkeypatch):
    from datetime import datetime, timezone

    import shared.policy.functions as policy

    rule = compile_rule({"count": {"field": "Test/things/list[*]", "where": {"count": {
        "value": [1], "name": "n", "where": {"value": "[less(current('Test/things/list[*]'), utcNow())]", "equals": True}},
        "greater": 0}}, "greater": 0}, {}, RESOLVER)
    assert _memos(rule)
    thing = {**THING, "properties": {**THING["properties"], "list": ["2025-06-01T00:00:00Z"]}}

    def at(year):
        class Clock(datetime):
            @classmethod
            def now(cls, tz=None):
                return datetime(year, 1, 1, tzinfo=timezone.utc)
        monkeypatch.setattr(policy, "datetime", Clock)
        return rule.matches(thing), rule.reference(thing)[0]

    assert at(2026) == (True, True)
    assert at(2025) == (False, False)  # the same string read, another verdict: not answered from memory
    assert at(2026) == (True, True)


def test_the_closures_form_gives_the_same_results_and_evidence(monkeypatch):
    """``GENERATE_RULES = False`` (nested closures, no generated Python) is a documented switch: same answers."""
    import shared.policy.conditions as policy

    monkeypatch.setattr(policy, "GENERATE_RULES", False)
    closures = load_catalog()
    monkeypatch.undo()
    resources = mix.templates()  # every covered type, hardened and weak, the NSGs with 20 rules
    for resource in resources:
        assert [(r.control_id, r.status, r.evidence, r.reason) for r in closures.evaluate(resource)] == \
            [(r.control_id, r.status, r.evidence, r.reason) for r in CATALOG.evaluate(resource)], resource["name"]
    assert not hasattr(next(c for c in closures.controls if c.id == "nsg-no-ssh-from-internet").rule.fast, "source")
