"""`python -m tests.service.relay_serve`: a real qualmon process owning sessions by a fixed
map (RELAY_TEST_ME, RELAY_TEST_URLS and RELAY_TEST_OWNED, JSON), for tests that need
instances with different process-wide settings (ICE addresses)."""

from __future__ import annotations

import asyncio
import json
import os
import signal

from aiohttp import web

from qualmon.config import settings_from_env
from qualmon.service.app import PrivateAccessLogger, create_app
from qualmon.service.keys import owners_key

from .relay_cluster import StaticOwners


async def main() -> None:
    settings = settings_from_env()
    app = create_app(settings)
    app[owners_key] = StaticOwners(
        os.environ["RELAY_TEST_ME"],
        json.loads(os.environ["RELAY_TEST_URLS"]),
        json.loads(os.environ["RELAY_TEST_OWNED"]),
    )
    runner = web.AppRunner(app, access_log_class=PrivateAccessLogger, shutdown_timeout=3.0)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
