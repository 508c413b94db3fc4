"""Timer trigger: keep Azure Policy assignments current and re-evaluate the subscriptions whose
assignments changed (every minute by default; see shared/service/assigned_scopes.py)."""
from __future__ import annotations

import logging

import azure.functions as func

log = logging.getLogger(__name__)
bp = func.Blueprint()

DEFAULT_SCHEDULE = "0 */1 * * * *"  # NCRONTAB with seconds, from the ASSIGNMENTS_SCHEDULE app setting


@bp.function_name("refresh_assignments")
@bp.timer_trigger(arg_name="timer", schedule="%ASSIGNMENTS_SCHEDULE%", run_on_startup=False, use_monitor=True)
def refresh_assignments_timer(timer: func.TimerRequest) -> None:
    from shared import bootstrap
    from shared.service.assigned_scopes import refresh_assignments

    deps = bootstrap.dependencies()
    if deps.assigned is None:
        return  # CONTROL_SOURCES leaves out 'assignments'
    subscriptions = deps.scopes.subscriptions  # with management groups: listed from ARM (kept 15 minutes)
    if not subscriptions:
        log.error("the assignments timer needs the subscriptions in MONITORED_SCOPES ('*' names none); "
                  "assignment changes at management groups are not noticed")
        return
    if timer.past_due:
        log.warning("assignments timer is running late (past due)")
    refresh_assignments(deps, bootstrap.graph_lister(), subscriptions)
