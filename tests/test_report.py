"""Posture reports: the figures, the Markdown tables, the self-contained HTML, and the CLI against Azurite."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from shared.catalog import ControlResult, Status, load_catalog
from shared.domain.drift import Evaluation, apply_evaluation
from shared.domain.posture import PostureSummary
from shared.report import NO_OWNER, build_report, render_html, render_markdown

REPO = Path(__file__).resolve().parents[1]
UTC = timezone.utc
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
SUB_A, SUB_B, SUB_C = (f"00000000-0000-0000-0000-0000000000{s}" for s in ("0a", "0b", "0c"))
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
C, NC, EX, NE = Status.COMPLIANT, Status.NONCOMPLIANT, Status.EXEMPT, Status.NOT_EVALUATED


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def rid(sub: str, rg: str, rtype: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{rtype}/{name}"


def evaluated(catalog, resource_id: str, rtype: str, at: datetime, verdicts: dict, *, team=None, owner=None,
              tags=None, previous=None):
    controls = catalog.by_id()
    results = None if verdicts is None else tuple(
        ControlResult(cid, controls[cid].title, controls[cid].severity, status,
                      [{"path": "x", "actual": True}] if status == NC else [],
                      "related data unavailable" if status == NE else None)
        for cid, status in verdicts.items())
    state, _ = apply_evaluation(previous, Evaluation(resource_id, rtype, at, f"e-{at:%d%H}", at, results,
                                                     location="westeurope", tags=tags or {}, owner=owner, team=team))
    return state


ST_PAY = rid(SUB_A, "rg-pay", "Microsoft.Storage/storageAccounts", "stpay01")
KV_PAY = rid(SUB_A, "rg-pay", "Microsoft.KeyVault/vaults", "kv-pay")
NSG_WEB = rid(SUB_B, "rg-web", "Microsoft.Network/networkSecurityGroups", "nsg-web")
ST_EVIL = rid(SUB_C, "rg-x", "Microsoft.Storage/storageAccounts", 'st"><b>evil')
ST_GONE = rid(SUB_B, "rg-web", "Microsoft.Storage/storageAccounts", "stgone")


def estate(catalog):
    """Four live resources in three subscriptions and three teams, and one deleted resource."""
    st = "Microsoft.Storage/storageAccounts"
    gone = evaluated(catalog, ST_GONE, st, datetime(2026, 2, 1, tzinfo=timezone.utc),
                     {"storage-https-only": NC}, team="web", owner="carol@contoso.com")
    return [
        # open since 1 March, High: due 8 March, so 12 days past due
        evaluated(catalog, ST_PAY, st, datetime(2026, 3, 1, 12, tzinfo=timezone.utc),
                  {"storage-https-only": NC, "storage-min-tls-1-2": C, "storage-no-public-blob-access": C,
                   "required-tags": C}, team="payments", owner="ana@contoso.com"),
        # open since 18 March, High: due 25 March, not yet past due
        evaluated(catalog, KV_PAY, "Microsoft.KeyVault/vaults", datetime(2026, 3, 18, 12, tzinfo=timezone.utc),
                  {"keyvault-purge-protection": NC, "keyvault-soft-delete": C}, team="payments",
                  owner="bob@contoso.com"),
        # Critical open since 10 March (due 11 March: 9 days past due); SSH accepted as a risk
        evaluated(catalog, NSG_WEB, "Microsoft.Network/networkSecurityGroups",
                  datetime(2026, 3, 10, 12, tzinfo=timezone.utc),
                  {"nsg-no-all-ports-from-internet": NC, "nsg-no-ssh-from-internet": EX}, team="web",
                  owner="carol@contoso.com"),
        # hostile tag values; Low open since 15 March (due in June); one control never decided
        evaluated(catalog, ST_EVIL, st, datetime(2026, 3, 15, 12, tzinfo=timezone.utc),
                  {"required-tags": NC, "storage-https-only": C, "storage-min-tls-1-2": NE},
                  team=SCRIPT, owner=None, tags={"team": SCRIPT, "note": IMG}),
        evaluated(catalog, ST_GONE, st, datetime(2026, 2, 2, tzinfo=timezone.utc), None, previous=gone),
    ]


HISTORY = [
    PostureSummary(datetime(2026, 3, 19, tzinfo=timezone.utc), {"Compliant": 6, "NonCompliant": 2}),
    PostureSummary(datetime(2026, 3, 18, tzinfo=timezone.utc), {"Compliant": 4, "NonCompliant": 4}),
    PostureSummary(datetime(2026, 3, 17, tzinfo=timezone.utc), {"NotEvaluated": 3}),  # nothing decided: no point
]


@pytest.fixture(scope="module")
def report(catalog):
    return build_report(estate(catalog), catalog, NOW, HISTORY)


def test_totals_leave_out_deleted_resources(report, catalog):
    t = report.totals
    assert (t.resources, t.deleted_resources, t.subscriptions) == (4, 1, 3)
    assert (t.compliant, t.open, t.exempt, t.not_evaluated, t.overdue) == (5, 4, 1, 1, 2)
    assert (t.evaluated, t.pairs) == (10, 11)
    assert t.compliance_percent == 50.0  # 5 / (5 + 4 + 1): exempt counts as not compliant
    assert report.exempt == 1 and report.controls_in_catalog == len(catalog.controls)
    assert all(ST_GONE not in f.resource_id for f in report.oldest_open + report.overdue)


def test_posture_by_severity_control_subscription_team_and_owner(report):
    sev = {name: (p.compliant, p.open, p.exempt, p.not_evaluated, p.overdue) for name, p in report.by_severity.items()}
    assert list(sev) == ["Critical", "High", "Medium", "Low"]
    assert sev == {"Critical": (0, 1, 0, 0, 1), "High": (3, 2, 1, 1, 1), "Medium": (1, 0, 0, 0, 0),
                   "Low": (1, 1, 0, 0, 0)}
    controls = report.by_control
    assert list(controls)[:4] == ["nsg-no-all-ports-from-internet", "keyvault-purge-protection",
                                  "storage-https-only", "required-tags"]  # open ones first, by severity
    https = controls["storage-https-only"]
    assert (https.title, https.severity, https.open, https.compliant, https.resources) == (
        "Storage accounts accept secure transfer (HTTPS) only", "High", 1, 1, 2)
    assert controls["nsg-no-ssh-from-internet"].exempt == 1
    assert {k: (p.resources, p.open) for k, p in report.by_subscription.items()} == {
        SUB_A: (2, 2), SUB_B: (1, 1), SUB_C: (1, 1)}
    assert list(report.by_team) == ["payments", "web", SCRIPT]
    payments = report.by_team["payments"]
    assert (payments.resources, payments.open, payments.overdue, payments.compliant) == (2, 2, 1, 4)
    assert payments.compliance_percent == pytest.approx(66.67, abs=0.01)
    assert report.by_team["web"].exempt == 1
    assert set(report.by_owner) == {"ana@contoso.com", "bob@contoso.com", "carol@contoso.com", NO_OWNER}


def test_oldest_open_and_overdue_findings(report):
    oldest = [(f.resource_name, f.control_id, f.severity, f.age_days) for f in report.oldest_open]
    assert oldest == [("stpay01", "storage-https-only", "High", 19),
                      ("nsg-web", "nsg-no-all-ports-from-internet", "Critical", 10),
                      ('st"><b>evil', "required-tags", "Low", 5),
                      ("kv-pay", "keyvault-purge-protection", "High", 2)]
    first = report.oldest_open[0]
    assert (first.owner, first.team, first.subscription, first.resource_group) == (
        "ana@contoso.com", "payments", SUB_A, "rg-pay")
    assert first.due == datetime(2026, 3, 8, 12, tzinfo=timezone.utc)
    assert [(f.resource_name, f.overdue_days) for f in report.overdue] == [("stpay01", 12), ("nsg-web", 9)]
    assert report.oldest_open[3].overdue_days is None


def test_oldest_open_is_capped_at_twenty(catalog):
    kv = "Microsoft.KeyVault/vaults"
    states = [evaluated(catalog, rid(SUB_A, "rg", kv, f"kv{i:02}"), kv, datetime(2026, 3, 1 + i % 15, 9, tzinfo=UTC),
                        {"keyvault-purge-protection": NC}) for i in range(25)]
    report = build_report(states, catalog, NOW)
    assert len(report.oldest_open) == 20 and report.totals.open == 25
    assert [f.since for f in report.oldest_open] == sorted(f.since for f in report.oldest_open)


def test_history_gives_compliance_over_time(report):
    assert [(p.at.day, p.compliance_percent, p.open) for p in report.history] == [(18, 50.0, 4), (19, 75.0, 2)]


def test_markdown_has_the_key_tables_and_escapes_untrusted_text(report):
    md = render_markdown(report)
    for heading in ("# Azure compliance report", "## At a glance", "## Open findings by severity",
                    "## Past due findings (2)", "## Oldest open findings", "## By team", "## By owner",
                    "## By subscription", "## By control", "## Compliance over time"):
        assert f"\n{heading}\n" in "\n" + md, heading
    assert "| Compliance | 50.0% |" in md
    assert "| Critical | 1 | 1 | 0 | 0 | 0.0% |" in md
    assert "| payments | 2 | 2 | 1 | 0 | 4 | 66.7% |" in md
    assert "storage\\-https\\-only" not in md and "| storage-https-only |" in md
    assert "<script>" not in md and "\\<script\\>alert(1)\\</script\\>" in md
    assert "<b>" not in md
    assert "2026-03-19 00:00 UTC | 75.0%" in md


class _Structure(HTMLParser):
    VOID = {"meta", "br", "hr", "img", "input", "link", "circle", "rect", "line", "polyline"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def parse(html_text: str) -> _Structure:
    parser = _Structure()
    parser.feed(html_text)
    parser.close()
    assert not parser.errors and not parser.stack, (parser.errors, parser.stack)
    return parser


def test_html_is_one_self_contained_document_with_charts(report):
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>") and page.count("<html") == 1 and page.rstrip().endswith("</html>")
    tags = parse(page).tags
    names = [t for t, _ in tags]
    assert names.count("html") == names.count("body") == names.count("style") == 1
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(names)
    assert all("src" not in attrs and "href" not in attrs for _, attrs in tags)
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", page, re.I)
    assert "@import" not in page and "url(" not in page
    assert names.count("svg") == 3 and "polyline" in names  # severity, team, and compliance over time
    assert "Open findings by severity" in page and "Open findings by team" in page
    assert '<span class="sev sev-critical">Critical</span>' in page  # colour and the word
    assert "50.0%" in page and "Generated 2026-03-20 12:00 UTC" in page
    assert "This report covers 4 Azure resources in 3 subscriptions" in page


def test_html_escapes_hostile_tag_values_and_resource_ids(report):
    page = render_html(report)
    assert SCRIPT not in page and "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>evil" not in page and "st&quot;&gt;&lt;b&gt;evil" in page
    assert "<img" not in page


def test_html_without_history_has_no_line_chart(catalog):
    for history in ((), HISTORY[:1]):
        page = render_html(build_report(estate(catalog), catalog, NOW, history))
        names = [t for t, _ in parse(page).tags]
        assert names.count("svg") == 2 and "polyline" not in names
        assert "two posture snapshots" in page


def test_empty_store_still_renders(catalog):
    report = build_report([], catalog, NOW)
    assert report.totals.compliance_percent is None and not report.oldest_open
    assert "no live resources" in render_markdown(report)
    parse(render_html(report))


# ---------------------------------------------------------------------------- the command


def run(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("STATE_", "FINDINGS_", "CONTROL"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "shared", *args], capture_output=True, text=True, cwd=REPO,
                          env=full_env, timeout=120)


def test_report_command_reads_the_state_table(azurite_connection_string, catalog, tmp_path):
    from azure.data.tables import TableClient

    from shared.adapters.table_store import TableStateStore

    name = "report" + uuid.uuid4().hex[:12]
    client = TableClient.from_connection_string(azurite_connection_string, name)
    store = TableStateStore.create_table(client)
    try:
        for state in estate(catalog):
            store.save(None, state)
        env = {"STATE_STORAGE__connectionString": azurite_connection_string, "STATE_TABLE_NAME": name}
        out = tmp_path / "reports" / "posture.html"
        proc = run("report", "--format", "html", "--out", str(out), env=env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "" and f"wrote {out}" in proc.stderr
        page = out.read_text(encoding="utf-8")
        parse(page)
        assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 2
        assert "stpay01" in page and "nsg-web" in page and "stgone" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and SCRIPT not in page
        proc = run("report", env=env)  # Markdown on stdout
        assert proc.returncode == 0, proc.stderr
        overdue = len(build_report(estate(catalog), catalog, datetime.now(timezone.utc)).overdue)  # real clock
        assert f"## Past due findings ({overdue})" in proc.stdout and "| Compliance | 50.0% |" in proc.stdout
    finally:
        client.delete_table()
        client.close()


def test_report_command_without_storage_exits_2_naming_the_settings():
    proc = run("report", "--format", "html")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "STATE_STORAGE__connectionString" in proc.stderr and "STATE_STORAGE__tableServiceUri" in proc.stderr


def test_an_assigned_control_is_reported_with_its_assignments_title_and_severity(catalog):
    from shared.domain.results import PolicyRef

    ref = PolicyRef("/subscriptions/s/providers/Microsoft.Authorization/policyAssignments/a",
                    "/providers/Microsoft.Authorization/policyDefinitions/d", title="Secure transfer should be enabled",
                    severity="High")
    at = datetime(2026, 3, 19, tzinfo=timezone.utc)
    result = ControlResult("a-d-12345678", ref.title, "High", Status.NONCOMPLIANT, policy=ref)
    state, _ = apply_evaluation(None, Evaluation(ST_PAY, "Microsoft.Storage/storageAccounts", at, "e", at, (result,)))
    report = build_report([state], catalog, NOW)
    [finding] = report.oldest_open
    assert (finding.title, finding.severity) == ("Secure transfer should be enabled", "High")
    posture = report.by_control["a-d-12345678"]
    assert (posture.title, posture.severity) == ("Secure transfer should be enabled", "High")
