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
