"""Alert rules read what each of their runs needs: the query range of every log alert rule, as the
templates deploy it (each parameter's default, and every allowed value), against the ``ago()`` spans
its query uses, the rule's frequency and the reconciliation schedule.

``log_alert_rules`` (used by tests/test_kql.py too) evaluates the templates' expressions enough for
that: parameters, variables, module inputs, loops and string interpolation.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.test_bicep import BICEP_FILES, MAIN, body, parsed, variable
from tests.test_infra import PLACEHOLDER



ISO_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")
KQL_SPAN = re.compile(r"(\d+(?:\.\d+)?)(d|h|m|s|ms)")
KQL_SPAN_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
AGO_CALL = re.compile(r"\bago\(((?:[^()]|\([^()]*\))*)\)")


def iso_duration(text: str):
    """An ISO 8601 duration of the kind alert rules use (P1D, PT5M, PT24H) as a timedelta."""
    from datetime import timedelta

    match = ISO_DURATION.fullmatch(text)
    assert match and text not in ("P", "PT"), f"not an ISO 8601 duration: {text!r}"
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def kql_timespan(expr: str):
    """A KQL timespan literal (90d, 5m) or totimespan("[d.]hh:mm:ss") as a timedelta; anything else fails."""
    from datetime import timedelta

    expr = expr.strip()
    if match := KQL_SPAN.fullmatch(expr):
        return timedelta(seconds=float(match.group(1)) * KQL_SPAN_UNITS[match.group(2)])
    if match := re.fullmatch(r'totimespan\("(?:(\d+)\.)?(\d{2}):(\d{2}):(\d{2})"\)', expr):
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    raise AssertionError(f"cannot read the timespan {expr!r}: a literal like 5m or totimespan(\"00:05:00\")")


def bicep_value(tree: dict, path: Path, expr: Any, env: dict[str, Any]) -> Any:
    """The value of the few Bicep expressions the alert rules use, for given parameter values (``env``).

    pycep gives identifiers and string literals alike as Python strings: a name of ``env`` or of a variable is
    an identifier, anything else a literal (with ``${name}`` interpolation).
    """
    if isinstance(expr, str):
        if expr in env:
            return env[expr]
        if expr in tree.get("variables", {}):
            return bicep_value(tree, path, variable(tree, expr), env)
        return re.sub(r"\$\{(\w+)\}", lambda m: str(bicep_value(tree, path, m.group(1), env)), expr)
    if isinstance(expr, (int, float, bool, list)):
        return expr
    if "function" in expr:
        function = expr["function"]
        args = function["parameters"]
        if function["type"] == "load_text_content":
            return (path.parent / args["file_path"]).read_text(encoding="utf-8")
        if function["type"] == "replace":
            return bicep_value(tree, path, args["original_string"], env).replace(
                bicep_value(tree, path, args["old_string"], env), str(bicep_value(tree, path, args["new_string"], env)))
        raise AssertionError(f"{path.name}: no evaluation for Bicep function {function['type']}")
    if "operator" in expr:
        operator = expr["operator"]
        left = bicep_value(tree, path, operator["operands"]["operand_1"], env)
        key = operator["operands"]["operand_2"]
        if operator["type"] == "property_accessor":
            return left[key]
        if operator["type"] == "index_accessor":
            return left[bicep_value(tree, path, key, env)]
        raise AssertionError(f"{path.name}: no evaluation for Bicep operator {operator['type']}")
    if isinstance(expr, dict):
        return {k: bicep_value(tree, path, v, env) for k, v in expr.items()}
    raise AssertionError(f"{path.name}: cannot evaluate {expr!r}")


def parameter_choices(tree: dict) -> dict[str, list]:
    """Every parameter with its possible values: the @allowed list, else the default alone."""
    choices = {}
    for name, param in tree.get("parameters", {}).items():
        allowed = [d["argument"] for d in param.get("decorators", []) if d["type"] == "allowed"]
        if allowed:
            choices[name] = list(allowed[0])
        elif "default" in param and isinstance(param["default"], (str, int, bool)):
            choices[name] = [param["default"]]
    return choices


def module_inputs(path: Path) -> dict[str, Any]:
    """The values main.bicep passes to module ``path`` that are known before deployment (literals, variables
    and main's own parameter defaults; module outputs and conditions are left out)."""
    main = parsed(MAIN)
    defaults = {name: p["default"] for name, p in main.get("parameters", {}).items()
                if isinstance(p.get("default"), (str, int, bool))}
    inputs = {}
    for mod in main.get("modules", {}).values():
        if (MAIN.parent / mod["detail"]["path"]).resolve() != path.resolve():
            continue
        for name, expr in body(mod).get("params", {}).items():
            try:
                value = bicep_value(main, MAIN, expr, defaults)
            except (AssertionError, KeyError, TypeError):
                continue
            if isinstance(value, (str, int, bool)) and "${" not in str(expr):
                inputs[name] = value
    return inputs


def log_alert_rules(every_allowed_value: bool = False) -> list[dict]:
    """Every log alert rule of the templates as a run sees it: name, frequency, query range, query and criteria.

    With ``every_allowed_value`` each rule comes once per allowed value of each parameter it reads (one
    parameter varied at a time, the others at their defaults); otherwise once, for the defaults.
    """
    import itertools

    rules = []
    for path in BICEP_FILES:
        tree = parsed(path)
        choices = parameter_choices(tree)
        inputs = module_inputs(path)
        for symbol, res in tree.get("resources", {}).items():
            if res["type"] != "Microsoft.Insights/scheduledQueryRules":
                continue
            loop = res["config"] if res["config"].get("loop_type") else None
            items = [None]
            if loop:
                items = bicep_value(tree, path, loop["loop_type"]["detail"]["array_name"], {})
            defaults = {name: values[0] if name not in tree["parameters"] or "default" not in tree["parameters"][name]
                        else tree["parameters"][name]["default"] for name, values in choices.items()}
            defaults.update(inputs)  # what main.bicep deploys by default
            envs = [defaults]
            if every_allowed_value:
                envs = [dict(defaults, **{name: value}) for name, values in choices.items() for value in values]
            for env, item in itertools.product(envs, items):
                env = dict(env, **({loop["loop_type"]["detail"]["item_name"]: item} if loop else {}))
                props = body(res)["properties"]
                (criterion,) = props["criteria"]["allOf"]
                frequency = iso_duration(bicep_value(tree, path, props["evaluationFrequency"], env))
                window = iso_duration(bicep_value(tree, path, props["windowSize"], env))
                override = props.get("overrideQueryTimeRange")
                rules.append({
                    "file": path.name, "symbol": symbol, "item": item, "env": env,
                    "frequency": frequency, "window": window,
                    "range": iso_duration(bicep_value(tree, path, override, env)) if override else window,
                    "query": bicep_value(tree, path, criterion["query"], env),
                    "aggregation": criterion["timeAggregation"], "operator": criterion["operator"],
                    "threshold": bicep_value(tree, path, criterion["threshold"], env),
                    "dimensions": [d["name"] for d in criterion.get("dimensions", [])],
                })
    return rules


def test_every_log_alert_rule_is_read_with_its_query_range():
    rules = log_alert_rules()
    symbols = {r["symbol"] for r in rules}
    assert symbols >= {"driftAlerts", "overdueAlert", "functionFailures", "noEvents"}, symbols
    assert all(not PLACEHOLDER.search(r["query"]) for r in rules), "a placeholder left in a rule's query"


def test_no_query_looks_back_further_than_its_rule_queries():
    """A log alert's query only sees its query range (windowSize, or overrideQueryTimeRange when set): an
    ago() beyond it is cut to the range silently, so a rule that relies on it misses what it means to see."""
    for rule in log_alert_rules(every_allowed_value=True):
        text = re.sub(r"//[^\n]*", "", rule["query"])
        for span in AGO_CALL.findall(text):
            assert kql_timespan(span) <= rule["range"], \
                f"{rule['symbol']} ({rule['env']}): ago({span}) looks back beyond its query range {rule['range']}"


def test_every_run_of_a_rule_queries_at_least_since_the_previous_run():
    """A range shorter than the frequency leaves records between two runs that no run sees."""
    for rule in log_alert_rules(every_allowed_value=True):
        assert rule["range"] >= rule["frequency"], (rule["symbol"], rule["env"])
        assert rule["window"] >= rule["frequency"], (rule["symbol"], rule["env"])


def test_drift_rules_count_records_by_ingestion_since_the_previous_run_and_reach_back_for_late_ones():
    """TimeGenerated is set by the function: a record ingested late falls before a window that equals the
    frequency. The drift rules query a longer range and select by ingestion time, one frequency back."""
    from datetime import timedelta

    drift = [r for r in log_alert_rules(every_allowed_value=True) if r["symbol"] == "driftAlerts"]
    assert {r["frequency"] for r in drift} == {timedelta(minutes=m) for m in (5, 10, 15)}
    for rule in drift:
        assert rule["range"] >= timedelta(hours=6) > rule["frequency"], rule["env"]
        (span,) = re.findall(r"ingestion_time\(\)\s*>\s*ago\(((?:[^()]|\([^()]*\))*)\)", rule["query"])
        assert kql_timespan(span) == rule["frequency"], (rule["env"], span)


def test_overdue_rule_range_holds_a_reconciliation_run_of_the_default_schedule():
    """The overdue rule reads the posture snapshot each reconciliation run sends: its range must hold one."""
    from datetime import timedelta

    (rule,) = [r for r in log_alert_rules() if r["symbol"] == "overdueAlert"]
    assert "ComplianceSnapshot_CL" in rule["query"]
    main = parsed(MAIN)
    schedule = main["parameters"]["reconcileSchedule"]["default"]
    second, minute, hour, *rest = schedule.split()
    assert (second, minute, rest) == ("0", "0", ["*", "*", "*"]) and hour.startswith("*/"), schedule
    assert timedelta(hours=int(hour[2:])) < rule["range"], (schedule, rule["range"])


# Azure Monitor, "Create or edit a log search alert rule" (aggregation granularity / window size): the
# window sizes a log search alert rule accepts, in minutes; and "Log search alerts" limits: a rule with a
# one-minute frequency does not accept queries that use ingestion_time().
SUPPORTED_WINDOW_MINUTES = {5, 10, 15, 30, 45, 60, 120, 180, 240, 300, 360, 1440, 2880}


def test_every_window_a_rule_can_be_deployed_with_is_one_azure_monitor_supports():
    """noEventsAlertHours once allowed 12 (PT12H, 720 minutes): not a supported window, the deployment fails."""
    for rule in log_alert_rules(every_allowed_value=True):
        minutes = rule["window"].total_seconds() / 60
        assert minutes in SUPPORTED_WINDOW_MINUTES, f"{rule['symbol']} ({rule['env']}): window of {minutes:g} minutes"


def test_a_rule_that_selects_by_ingestion_time_never_runs_every_minute():
    """driftAlertFrequency once allowed PT1M with a query on ingestion_time(), which such rules refuse (and
    skipQueryValidation hid it)."""
    from datetime import timedelta

    checked = 0
    for rule in log_alert_rules(every_allowed_value=True):
        if "ingestion_time()" in re.sub(r"//[^\n]*", "", rule["query"]):
            checked += 1
            assert rule["frequency"] > timedelta(minutes=1), (rule["symbol"], rule["env"])
    assert checked, "no rule reads ingestion_time(): the test checks nothing"
