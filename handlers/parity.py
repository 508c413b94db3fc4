"""Timer trigger: compare the verdicts on Azure Policy assignments with Azure Policy's own latest states,
one ComplianceParity_CL record per comparison (every 6 hours by default; shared/service/parity.py)."""
from __future__ import annotations

import logging

import azure.functions as func

log = logging.getLogger(__name__)
bp = func.Blueprint()

DEFAULT_SCHEDULE = "0 30 */6 * * *"  # NCRONTAB with seconds, from the PARITY_SCHEDULE app setting


@bp.function_name("parity")
@bp.timer_trigger(arg_name="timer", schedule="%PARITY_SCHEDULE%", run_on_startup=False, use_monitor=True)
def parity_timer(timer: func.TimerRequest) -> None:
    from shared import bootstrap
    from shared.config import Settings
    from shared.service.parity import run_parity

    deps = bootstrap.dependencies()
    if deps.assigned is None:
        return  # CONTROL_SOURCES leaves out 'assignments': nothing to compare
    if not deps.scopes.subscriptions:
        log.error("parity needs the subscriptions in MONITORED_SCOPES ('*' names none); nothing was compared")
        return
    settings = Settings.from_env()
    run_parity(deps.store, bootstrap.build_policy_states(settings).latest, deps.scopes.subscriptions,
               bootstrap.build_sink(settings, parity=True), deps.clock)
