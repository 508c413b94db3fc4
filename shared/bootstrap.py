"""The one place where real adapters are built and wired. Lazily, once per process.

Nothing here runs at import time: the first event pays for building clients,
later events reuse them. Tests and the CLI install their own dependencies with
``override``.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from .config import ConfigurationError, Settings
from .service.changes import Dependencies

log = logging.getLogger(__name__)

_lock = threading.RLock()
_deps: Dependencies | None = None
_credentials: dict[str, Any] = {}


def credential(client_id: str | None = None) -> Any:
    """One DefaultAzureCredential per identity per process (managed identity in Azure).

    ``client_id`` selects a user-assigned identity; by default ``AZURE_CLIENT_ID``
    (empty: the system-assigned identity).
    """
    client_id = client_id or Settings.from_env().managed_identity_client_id or ""
    with _lock:
        if client_id not in _credentials:
            from azure.identity import DefaultAzureCredential

            kwargs = {"managed_identity_client_id": client_id} if client_id else {}
            _credentials[client_id] = DefaultAzureCredential(**kwargs)
        return _credentials[client_id]


# azure-core retries 408/429/5xx and connection errors with backoff; timeouts bound a hung call.
TABLE_CLIENT_OPTIONS = {"retry_total": 4, "retry_backoff_factor": 0.5, "retry_backoff_max": 8,
                        "connection_timeout": 5, "read_timeout": 15}


def _table(settings: Settings, name: str):
    from azure.data.tables import TableClient

    if settings.state_connection_string:
        return TableClient.from_connection_string(settings.state_connection_string, name, **TABLE_CLIENT_OPTIONS)
    if settings.state_table_service_uri:
        return TableClient(settings.state_table_service_uri, name, credential=credential(settings.state_client_id),
                           **TABLE_CLIENT_OPTIONS)
    raise ConfigurationError(
        "STATE_STORE=table needs STATE_STORAGE__tableServiceUri (managed identity) or "
        "STATE_STORAGE__connectionString (Azurite / development)"
    )


def build_store(settings: Settings):
    if settings.state_store == "memory":
        from .adapters.memory import InMemoryStateStore

        return InMemoryStateStore()
    from .adapters.table_store import TableStateStore

    return TableStateStore.create_table(_table(settings, settings.state_table_name))


def build_exemption_store(settings: Settings):
    if settings.state_store == "memory":
        from .adapters.exemption_store import InMemoryExemptionStore

        return InMemoryExemptionStore()
    from .adapters.exemption_store import TableExemptionStore

    return TableExemptionStore.create_table(_table(settings, settings.exemptions_table_name))


# Retries and timeouts bound an inline send (after a commit) to well under OUTBOX_GRACE (shared/service/ports.py):
# at most 6 tries of 5 s connect + 30 s read, plus 0.8-12.8 s backoff, about 4 minutes; the drain never
# takes a row whose inline send may still be running.
INGESTION_CLIENT_OPTIONS = {"retry_total": 5, "retry_backoff_factor": 0.8, "retry_backoff_max": 60,
                            "connection_timeout": 5, "read_timeout": 30}


def build_sink(settings: Settings, snapshot: bool = False, parity: bool = False, rejections: bool = False):
    """The findings sink, or the posture snapshot's (``snapshot``), parity's (``parity``) or permanent
    rejections' (``rejections``): the same rule, each its own stream (or file)."""
    kind = "snapshot" if snapshot else "parity" if parity else "rejections" if rejections else None
    if settings.findings_sink == "jsonl":
        from pathlib import Path

        from .adapters.memory import JsonLinesSink

        path = Path(settings.findings_path)
        return JsonLinesSink(path.with_name(f"{path.stem}-{kind}{path.suffix}") if kind else path)
    settings.require("ingestion_endpoint", "ingestion_rule_id")
    from azure.monitor.ingestion import LogsIngestionClient

    from .adapters.logs_ingestion import LogsIngestionSink

    client = LogsIngestionClient(settings.ingestion_endpoint, credential(), **INGESTION_CLIENT_OPTIONS)
    stream = {"snapshot": settings.snapshot_stream, "parity": settings.parity_stream,
              "rejections": settings.rejection_stream}.get(kind or "", settings.ingestion_stream)
    return LogsIngestionSink(client, settings.ingestion_rule_id, stream)


ARM_CLIENT_OPTIONS = {"retry_total": 4, "retry_backoff_factor": 0.8}
NO_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"  # tenant-scope calls need none


def _resource_client(settings: Settings, subscription_id: str):
    from azure.mgmt.resource.resources import ResourceManagementClient

    return ResourceManagementClient(credential(), subscription_id, base_url=settings.arm_endpoint,
                                    credential_scopes=[settings.arm_token_scope], **ARM_CLIENT_OPTIONS)


def _network_client(settings: Settings, subscription_id: str):
    from azure.mgmt.network import NetworkManagementClient  # 0.2 s to import: only when a flow log is read

    return NetworkManagementClient(credential(), subscription_id, base_url=settings.arm_endpoint,
                                   credential_scopes=[settings.arm_token_scope], **ARM_CLIENT_OPTIONS)


def build_reader(settings: Settings):
    from .adapters.arm import ArmResourceReader

    return ArmResourceReader(lambda sub: _resource_client(settings, sub), lambda sub: _network_client(settings, sub))


def graph_lister(settings: Settings | None = None):
    """A Resource Graph lister over the function's identity (reconciliation)."""
    from azure.mgmt.resourcegraph import ResourceGraphClient

    from .adapters.resource_graph import ResourceGraphLister

    settings = settings or Settings.from_env()
    client = ResourceGraphClient(credential(), base_url=settings.arm_endpoint,
                                 credential_scopes=[settings.arm_token_scope], **ARM_CLIENT_OPTIONS)
    return ResourceGraphLister(client)


def build_alias_source(settings: Settings):
    """Resolves aliases missing from the alias table from ARM (only custom controls need it)."""
    from .adapters.arm import ArmAliasSource

    return ArmAliasSource(_resource_client(settings, NO_SUBSCRIPTION))


def build_policy_definition_source(settings: Settings):
    """Reads policy definitions (initiative members) from ARM by id."""
    from .adapters.arm import ArmPolicyDefinitions

    return ArmPolicyDefinitions(_resource_client(settings, NO_SUBSCRIPTION))


def build_policy_states(settings: Settings):
    """Azure Policy's latest states of a subscription, from PolicyInsights (parity; Reader covers it)."""
    from .adapters.arm import ArmPolicyStates

    return ArmPolicyStates(_resource_client(settings, NO_SUBSCRIPTION))


def build_assigned_policy(settings: Settings, resolver):
    """The Azure Policy assignments of the monitored subscriptions, read from ARM (Reader covers it)."""
    from datetime import timedelta

    from .adapters.arm import ArmPolicyAssignments
    from .service.assigned_policy import AssignedPolicy

    client = _resource_client(settings, NO_SUBSCRIPTION)
    return AssignedPolicy(ArmPolicyAssignments(client), build_policy_definition_source(settings), resolver,
                          refresh=timedelta(minutes=settings.assignments_refresh_minutes))


def monitored_scopes(settings: Settings):
    """``MONITORED_SCOPES`` parsed; with management groups in it, a ``MonitoredScopes`` that lists their
    subscriptions from ARM (Reader on the groups covers it). A malformed setting is a ``ConfigurationError``."""
    from .domain.scopes import InvalidScope, Scopes

    try:
        scopes = Scopes.parse(settings.monitored_scopes)
    except InvalidScope as exc:
        raise ConfigurationError(str(exc)) from None
    if scopes.unrestricted:
        log.warning("MONITORED_SCOPES=*: events for any resource are evaluated (development only)")
    if not scopes.management_groups:
        return scopes
    from .adapters.arm import ArmManagementGroups
    from .service.monitored_scopes import MonitoredScopes

    return MonitoredScopes(scopes, ArmManagementGroups(_resource_client(settings, NO_SUBSCRIPTION)))


def build(settings: Settings | None = None) -> Dependencies:
    from .catalog import load_catalog

    settings = settings or Settings.from_env()
    catalog = load_catalog(settings.control_directories(), disabled=settings.disabled_controls,
                           parameters=settings.control_parameters,
                           alias_fallback=lambda alias: build_alias_source_once(settings)(alias))
    scopes = monitored_scopes(settings)
    from datetime import timedelta

    from .adapters.exemption_store import CachedExemptions
    from .domain.ownership import OwnershipPolicy

    assigned = None
    if settings.assignments_enabled:
        from .catalog import alias_resolver

        assigned = build_assigned_policy(settings, alias_resolver(
            alias_fallback=lambda alias: build_alias_source_once(settings)(alias)))
    if settings.controls_paths and "custom" not in settings.control_sources:
        log.warning("CONTROLS_PATH is set but CONTROL_SOURCES (%s) leaves out 'custom': its controls are not loaded",
                    ",".join(settings.control_sources))
    deps = Dependencies(catalog=catalog, reader=build_reader(settings), store=build_store(settings),
                        sink=build_sink(settings), scopes=scopes,
                        ownership=OwnershipPolicy(settings.owner_tags, settings.team_tags),
                        exemptions=CachedExemptions(build_exemption_store(settings)),
                        snapshot_sink=build_sink(settings, snapshot=True),
                        rejection_sink=build_sink(settings, rejections=True),
                        sla={k: timedelta(days=v) for k, v in settings.sla_days.items()}, assigned=assigned)
    log.info("compliance monitor ready: %d controls, sources %s, state=%s, findings=%s", len(catalog.controls),
             ",".join(settings.control_sources), settings.state_store, settings.findings_sink)
    return deps


_alias_source: Any = None


def build_alias_source_once(settings: Settings):
    global _alias_source
    with _lock:
        if _alias_source is None:
            _alias_source = build_alias_source(settings)
        return _alias_source


def dependencies() -> Dependencies:
    global _deps
    if _deps is None:
        with _lock:
            if _deps is None:
                _deps = build()
    return _deps


def override(deps: Dependencies | None) -> None:
    """Install ``deps`` for this process (tests, CLI); None resets to lazy building."""
    global _deps
    with _lock:
        _deps = deps
        if deps is None:
            _credentials.clear()
