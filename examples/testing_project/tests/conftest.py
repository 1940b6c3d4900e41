"""naq.testing provides the fixtures (naq_server, naq_client, naq_sync_client, naq_worker).

Only two things are set up here: which backends async tests run on, and Django's settings.
"""

import os

import django
import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
django.setup()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on asyncio and on Trio."""
    return request.param
