"""The Trio program, with a worker on the same Trio loop."""

import pytest
from shop.thumbnails import make_thumbnails


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])  # the program uses trio's nurseries
@pytest.mark.naq_worker("images")
async def test_make_thumbnails(naq_client, naq_worker):
    results = await make_thumbnails(naq_client, ["a.png", "b.png", "c.png"], 128)
    assert results == {"a.png": "a.png@128px", "b.png": "b.png@128px", "c.png": "c.png@128px"}
