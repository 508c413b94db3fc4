"""Timer trigger: reconcile the monitored subscriptions with Azure Resource Graph (default every 6 hours)."""
from __future__ import annotations

import logging

import azure.functions as func

log = logging.getLogger(__name__)
bp = func.Blueprint()

DEFAULT_SCHEDULE = "0 0 */6 * * *"  # NCRONTAB with seconds, from the RECONCILE_SCHEDULE app setting


@bp.function_name("reconcile")
@bp.timer_trigger(arg_name="timer", schedule="%RECONCILE_SCHEDULE%", run_on_startup=False, use_monitor=True)
def reconcile_timer(timer: func.TimerRequest) -> None:
    from shared import bootstrap
    from shared.service.reconcile import reconcile

    deps = bootstrap.dependencies()
    subscriptions = deps.scopes.subscriptions
    if not subscriptions:
        log.error("reconciliation needs the subscriptions to list in MONITORED_SCOPES ('*' names none); "
                  "nothing was reconciled")
        return
    if timer.past_due:
        log.warning("reconciliation is running late (past due)")
    reconcile(deps, bootstrap.graph_lister(), subscriptions)
