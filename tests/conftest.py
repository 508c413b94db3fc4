"""Shared fixtures: a real Azurite (testcontainers, npm, or AZURITE_CONNECTION_STRING)."""
from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from shared.devtools.azurite import AzuriteUnavailable, azurite

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).with_name("fixtures")
logging.getLogger("azure").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def azurite_connection_string():
    """A running Azurite table service for the whole session. Fails (never skips) when none can start."""
    try:
        with azurite() as conn:
            yield conn
    except AzuriteUnavailable as exc:
        pytest.fail(f"Azurite is required for this test and could not be started: {exc}", pytrace=False)


@pytest.fixture
def table_client(azurite_connection_string):
    """A fresh, empty table on Azurite, deleted after the test."""
    from azure.data.tables import TableClient

    name = "t" + uuid.uuid4().hex[:20]
    client = TableClient.from_connection_string(azurite_connection_string, name)
    client.create_table()
    yield client
    client.delete_table()
    client.close()


# The controls the pipeline tests (service, end to end, faults) rely on. Pinned, so that growing the
# catalog does not change what those tests expect; the catalog itself is tested by its case files.
PIPELINE_CONTROLS = (
    "storage-https-only", "storage-min-tls-1-2", "storage-no-public-blob-access", "storage-network-default-deny",
    "nsg-no-ssh-from-internet", "nsg-no-rdp-from-internet", "nsg-no-all-ports-from-internet",
    "keyvault-purge-protection", "keyvault-soft-delete", "required-tags",
)


def pipeline_catalog():
    from shared.catalog import load_catalog

    return load_catalog(disabled=disabled_except(PIPELINE_CONTROLS))


def disabled_except(keep) -> list[str]:
    from shared.catalog import BUILTIN_DIR, control_files
    import yaml

    ids = [yaml.safe_load(p.read_text(encoding="utf-8"))["id"] for p in control_files(BUILTIN_DIR)]
    return [i for i in ids if i not in keep]
