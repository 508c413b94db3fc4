"""FindingsSink over the Azure Monitor Logs Ingestion API (``azure-monitor-ingestion``).

``LogsIngestionClient.upload`` chunks (about 1 MiB), gzips, authenticates and
retries 429 / 5xx with ``Retry-After``; this adapter only reports what failed.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from azure.core.exceptions import AzureError
from azure.monitor.ingestion import LogsIngestionClient

from ..service.ports import FindingsDeliveryError

log = logging.getLogger(__name__)


class LogsIngestionSink:
    def __init__(self, client: LogsIngestionClient, rule_id: str, stream_name: str) -> None:
        self.client = client
        self.rule_id = rule_id
        self.stream_name = stream_name

    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        if not records:
            return
        failures: list[tuple[str, int]] = []
        failed_ids: set[str] = set()

        def on_error(error: Any) -> None:
            failures.append((str(error.error), len(error.failed_logs)))
            failed_ids.update(str(log_.get("FindingId")) for log_ in error.failed_logs if isinstance(log_, dict))

        try:
            self.client.upload(rule_id=self.rule_id, stream_name=self.stream_name, logs=list(records),
                               on_error=on_error)
        except AzureError as exc:
            raise FindingsDeliveryError(f"Logs Ingestion upload of {len(records)} finding(s) failed: {exc}") from exc
        if failures:
            lost = sum(n for _, n in failures)
            raise FindingsDeliveryError(
                f"Logs Ingestion upload failed for {lost} of {len(records)} finding(s) to stream {self.stream_name}: "
                f"{failures[0][0][:300]}", failed_ids=failed_ids or None,
            )
        log.debug("sent %d finding(s) to %s", len(records), self.stream_name)
