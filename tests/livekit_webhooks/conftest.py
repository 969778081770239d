"""A gateway that accepts webhooks from two LiveKit deployments: `double` (a wire-level double,
every organisation) and `elsewhere` (a key that serves another organisation only)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.http.livekit_webhooks_api import WEBHOOK_PATH
from tests.livekit_double import LiveKitDouble, running_double
from tests.plugins.gateway_server import Gateway

KEY, SECRET = "APIdouble" + secrets.token_hex(4), secrets.token_urlsafe(32)
OTHER_KEY, OTHER_SECRET = "APIelsewhere", secrets.token_urlsafe(32)
OTHER_ORG = "0" * 32  # an organisation id that is not the tests' organisation


@pytest.fixture
def gateway_settings(tmp_path: Path) -> dict[str, Any]:
    keys = tmp_path / "livekit-keys.json"
    keys.write_text(
        json.dumps(
            {
                KEY: {"secret": SECRET, "organisations": "*"},
                OTHER_KEY: {"secret": OTHER_SECRET, "organisations": [OTHER_ORG]},
            }
        )
    )
    os.chmod(keys, 0o600)
    return {"livekit_keys_file": keys}


@pytest.fixture
async def double(gateway: Gateway) -> AsyncIterator[LiveKitDouble]:
    async with running_double(
        api_key=KEY, secret=SECRET, webhook_url=gateway.base + WEBHOOK_PATH
    ) as started:
        yield started
