"""The aiohttp service: app factory, routes, auth, metrics."""
