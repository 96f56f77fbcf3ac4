"""The periodic malloc_trim: it runs, it is counted, and it can be switched off."""

from __future__ import annotations

import asyncio

import pytest

from qualmon.config import ConfigError, Settings, settings_from_env
from qualmon.service.memory_trim import malloc_trim, trim_periodically

from ..conftest import SECRET, Service, make_settings, wait_for


def test_malloc_trim_calls_glibc() -> None:
    # This machine runs glibc: the call exists and answers whether memory went back.
    assert malloc_trim() in (True, False)


async def test_trim_repeats_until_cancelled() -> None:
    results: list[bool] = []
    task = asyncio.create_task(trim_periodically(0.01, results.append))
    await wait_for(lambda: len(results) >= 3, timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    count = len(results)
    await asyncio.sleep(0.05)
    assert len(results) == count, "trimming went on after cancel"


@pytest.fixture
def settings() -> Settings:
    return make_settings(memory_trim_seconds=0.05)


async def test_the_service_trims_and_counts_it(service: Service) -> None:
    def trims() -> float:
        registry = service.metrics.registry
        return sum(
            registry.get_sample_value("qualmon_memory_trims_total", {"released": r}) or 0.0
            for r in ("true", "false")
        )

    await wait_for(lambda: trims() >= 2, timeout=20)
    assert "qualmon_memory_trims_total" in await service.metrics_text()


def test_memory_trim_setting() -> None:
    env = {"QUALMON_SECRET": SECRET}
    assert settings_from_env(env).memory_trim_seconds == 60.0
    assert (
        settings_from_env({**env, "QUALMON_MEMORY_TRIM_SECONDS": "0"}).memory_trim_seconds is None
    )
    assert settings_from_env({**env, "QUALMON_MEMORY_TRIM_SECONDS": "5"}).memory_trim_seconds == 5.0
    for bad in ("-1", "soon", "inf", "٣"):
        with pytest.raises(ConfigError, match="QUALMON_MEMORY_TRIM_SECONDS"):
            settings_from_env({**env, "QUALMON_MEMORY_TRIM_SECONDS": bad})


def test_start_up_objects_are_frozen_after_one_collection() -> None:
    """In a process of its own (frozen objects are never collected): garbage from before
    the start is collected first, not frozen with the rest."""
    import subprocess
    import sys

    code = (
        "import gc, weakref\n"
        "from qualmon.service.memory_trim import freeze_startup_heap\n"
        "class Cycle:\n"
        "    pass\n"
        "c = Cycle(); c.me = c; gone = weakref.ref(c); del c\n"
        "frozen = freeze_startup_heap()\n"
        "assert frozen == gc.get_freeze_count() > 1000, frozen\n"
        "assert gone() is None\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
