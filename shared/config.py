"""Settings from app settings / environment variables. Every setting is listed in
``local.settings.sample.json`` and explained in the README."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


class ConfigurationError(ValueError):
    """A setting is missing or invalid; the message names the setting."""


DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
DEFAULT_ARM_SCOPE = "https://management.azure.com/.default"
DEFAULT_STREAM = "Custom-ComplianceFindings"
DEFAULT_SNAPSHOT_STREAM = "Custom-ComplianceSnapshot"
DEFAULT_PARITY_STREAM = "Custom-ComplianceParity"
DEFAULT_REJECTION_STREAM = "Custom-ComplianceRejections"
DEFAULT_TABLE = "ComplianceState"
DEFAULT_EXEMPTIONS_TABLE = "ComplianceExemptions"
DEFAULT_SLA_DAYS = {"Critical": 1, "High": 7, "Medium": 30, "Low": 90}
# Where controls come from: the built-in catalog, CONTROLS_PATH, and the Azure Policy assignments of the
# monitored subscriptions (read from ARM). All three unless CONTROL_SOURCES says otherwise.
CONTROL_SOURCES = ("builtin", "custom", "assignments")
DEFAULT_ASSIGNMENTS_REFRESH_MINUTES = 10.0


@dataclass(frozen=True)
class Settings:
    state_store: str = "table"  # table | memory
    state_table_name: str = DEFAULT_TABLE
    exemptions_table_name: str = DEFAULT_EXEMPTIONS_TABLE
    state_connection_string: str | None = None  # keys / Azurite (development)
    state_table_service_uri: str | None = None  # identity-based (production)
    state_client_id: str | None = None
    findings_sink: str = "logsIngestion"  # logsIngestion | jsonl
    ingestion_endpoint: str | None = None
    ingestion_rule_id: str | None = None
    ingestion_stream: str = DEFAULT_STREAM
    snapshot_stream: str = DEFAULT_SNAPSHOT_STREAM
    parity_stream: str = DEFAULT_PARITY_STREAM
    rejection_stream: str = DEFAULT_REJECTION_STREAM
    findings_path: str = "findings.jsonl"
    arm_endpoint: str = DEFAULT_ARM_ENDPOINT
    arm_token_scope: str = DEFAULT_ARM_SCOPE
    managed_identity_client_id: str | None = None
    monitored_scopes: tuple[str, ...] = ()
    owner_tags: tuple[str, ...] = ("owner",)
    team_tags: tuple[str, ...] = ("team",)
    sla_days: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SLA_DAYS))
    controls_paths: tuple[str, ...] = ()
    disabled_controls: tuple[str, ...] = ()
    control_parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    control_sources: tuple[str, ...] = CONTROL_SOURCES
    assignments_refresh_minutes: float = DEFAULT_ASSIGNMENTS_REFRESH_MINUTES
    # The HTTP API refuses a call App Service Authentication did not validate (API_REQUIRE_AUTHENTICATION).
    api_require_authentication: bool = False

    @property
    def assignments_enabled(self) -> bool:
        return "assignments" in self.control_sources

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        get = lambda name, default=None: (env.get(name) or "").strip() or default  # noqa: E731

        def choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
            value = get(name, default)
            match = next((a for a in allowed if a.lower() == value.lower()), None)
            if match is None:
                raise ConfigurationError(f"{name}={value!r} is not one of: {', '.join(allowed)}")
            return match

        raw_params = get("CONTROL_PARAMETERS")
        params: dict = {}
        if raw_params:
            try:
                params = json.loads(raw_params)
            except json.JSONDecodeError as exc:
                raise ConfigurationError(f"CONTROL_PARAMETERS is not valid JSON: {exc.msg}") from None
            if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
                raise ConfigurationError(
                    'CONTROL_PARAMETERS must be a JSON object of control id -> {parameter: value}')
        split = lambda name: tuple(p.strip() for p in (get(name) or "").replace(";", ",").split(",") if p.strip())  # noqa: E731
        sla = dict(DEFAULT_SLA_DAYS)
        raw_sla = get("SLA_DAYS")
        if raw_sla:
            try:
                given = json.loads(raw_sla)
            except json.JSONDecodeError as exc:
                raise ConfigurationError(f"SLA_DAYS is not valid JSON: {exc.msg}") from None
            if not isinstance(given, dict) or not set(given) <= set(DEFAULT_SLA_DAYS) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in given.values()):
                raise ConfigurationError('SLA_DAYS must map severities (Critical, High, Medium, Low) to positive '
                                         'numbers of days, e.g. {"Critical": 1, "High": 7}')
            sla.update(given)
        sources = tuple(s.lower() for s in split("CONTROL_SOURCES")) or CONTROL_SOURCES
        unknown = [s for s in sources if s not in CONTROL_SOURCES]
        if unknown:
            raise ConfigurationError(f"CONTROL_SOURCES: {', '.join(unknown)} is not a source; use any of "
                                     f"{', '.join(CONTROL_SOURCES)} (comma-separated)")
        raw_refresh = get("ASSIGNMENTS_REFRESH_MINUTES")
        refresh = DEFAULT_ASSIGNMENTS_REFRESH_MINUTES
        if raw_refresh:
            try:
                refresh = float(raw_refresh)
            except ValueError:
                refresh = -1.0
            if not 1 <= refresh <= 1440:
                raise ConfigurationError(f"ASSIGNMENTS_REFRESH_MINUTES={raw_refresh!r}: give a number of minutes "
                                         "from 1 to 1440")
        return cls(
            state_store=choice("STATE_STORE", "table", ("table", "memory")),
            state_table_name=get("STATE_TABLE_NAME", DEFAULT_TABLE),
            exemptions_table_name=get("EXEMPTIONS_TABLE_NAME", DEFAULT_EXEMPTIONS_TABLE),
            state_connection_string=get("STATE_STORAGE__connectionString") or get("STATE_STORAGE"),
            state_table_service_uri=get("STATE_STORAGE__tableServiceUri"),
            state_client_id=get("STATE_STORAGE__clientId"),
            findings_sink=choice("FINDINGS_SINK", "logsIngestion", ("logsIngestion", "jsonl")),
            ingestion_endpoint=get("LOGS_INGESTION__endpoint"),
            ingestion_rule_id=get("LOGS_INGESTION__ruleId"),
            ingestion_stream=get("LOGS_INGESTION__streamName", DEFAULT_STREAM),
            snapshot_stream=get("LOGS_INGESTION__snapshotStreamName", DEFAULT_SNAPSHOT_STREAM),
            parity_stream=get("LOGS_INGESTION__parityStreamName", DEFAULT_PARITY_STREAM),
            rejection_stream=get("LOGS_INGESTION__rejectionStreamName", DEFAULT_REJECTION_STREAM),
            findings_path=get("FINDINGS_JSONL_PATH", "findings.jsonl"),
            arm_endpoint=get("ARM_ENDPOINT", DEFAULT_ARM_ENDPOINT),
            arm_token_scope=get("ARM_TOKEN_SCOPE", DEFAULT_ARM_SCOPE),
            managed_identity_client_id=get("AZURE_CLIENT_ID"),
            monitored_scopes=split("MONITORED_SCOPES"),
            owner_tags=split("OWNER_TAGS") or ("owner",),
            team_tags=split("TEAM_TAGS") or ("team",),
            sla_days=sla,
            controls_paths=split("CONTROLS_PATH"),
            disabled_controls=split("DISABLED_CONTROLS"),
            control_parameters=params,
            control_sources=sources,
            assignments_refresh_minutes=refresh,
            api_require_authentication=choice("API_REQUIRE_AUTHENTICATION", "false", ("true", "false")) == "true",
        )

    def require(self, *names: str) -> None:
        env_names = {
            "ingestion_endpoint": "LOGS_INGESTION__endpoint",
            "ingestion_rule_id": "LOGS_INGESTION__ruleId",
        }
        missing = [env_names.get(n, n) for n in names if not getattr(self, n)]
        if missing:
            raise ConfigurationError(f"missing required setting(s): {', '.join(missing)}")

    def control_directories(self) -> list[Path]:
        from .catalog import BUILTIN_DIR

        builtin = [BUILTIN_DIR] if "builtin" in self.control_sources else []
        return builtin + ([Path(p) for p in self.controls_paths] if "custom" in self.control_sources else [])
