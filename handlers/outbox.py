"""Timer trigger: deliver findings left in the outbox (failed sends, crashes between commit and send)."""
from __future__ import annotations

import logging

import azure.functions as func

log = logging.getLogger(__name__)
bp = func.Blueprint()

# NCRONTAB (with seconds), read by the Functions host from the app setting; every minute by default.
DEFAULT_SCHEDULE = "0 */1 * * * *"


@bp.function_name("drain_findings")
@bp.timer_trigger(arg_name="timer", schedule="%OUTBOX_DRAIN_SCHEDULE%", run_on_startup=False, use_monitor=True)
def drain_findings(timer: func.TimerRequest) -> None:
    from shared import bootstrap
    from shared.service.changes import drain_outbox

    if timer.past_due:
        log.warning("outbox drain is running late (past due)")
    outcome = drain_outbox(bootstrap.dependencies())
    if outcome.sent or outcome.deferred:
        log.info("outbox drain: %d finding(s) delivered, %d deferred", outcome.sent, outcome.deferred)
