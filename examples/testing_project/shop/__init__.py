"""A tiny shop: job functions, an asyncio service, a Trio program and a Django view."""
