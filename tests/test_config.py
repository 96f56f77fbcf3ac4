"""Settings from the environment and flags: defaults, overrides, clear errors."""

from __future__ import annotations

import pytest

from qualmon.config import ConfigError, settings_from_env

SECRET = "s" * 40
HOOK = {
    "QUALMON_SECRET": SECRET,
    "QUALMON_WEBHOOK_URL": "https://platform.example/hooks/qualmon?token=t0k",
    "QUALMON_WEBHOOK_SECRET": "h" * 32,
}


def test_defaults() -> None:
    settings = settings_from_env({"QUALMON_SECRET": SECRET})
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.max_legs == 100 and settings.db_path == "qualmon.db"
    assert settings.speech_enabled and settings.vad_mode == 2
    assert settings.speech.mic_silent_after_seconds == 30.0
    assert not next(r for r in settings.warning_rules if r.kind == "talk_balance").enabled


def test_environment_and_flags() -> None:
    env = {
        "QUALMON_SECRET": SECRET,
        "QUALMON_PORT": "9000",
        "QUALMON_MAX_LEGS": "7",
        "QUALMON_ICE_ADDRESSES": "127.0.0.1, ::1",
        "QUALMON_SPEECH": "off",
        "QUALMON_VAD_MODE": "3",
        "QUALMON_MIC_SILENT_SECONDS": "12",
        "QUALMON_TALK_BALANCE": "on",
    }
    settings = settings_from_env(env, port=9100, host=None)
    assert settings.port == 9100  # a flag beats the environment
    assert settings.max_legs == 7
    assert settings.ice_addresses == ("127.0.0.1", "::1")
    assert not settings.speech_enabled
    assert settings.vad_mode == 3
    assert settings.speech.vad_overhang_seconds == pytest.approx(0.10)
    assert settings.speech.mic_silent_after_seconds == 12.0
    assert next(r for r in settings.warning_rules if r.kind == "talk_balance").enabled


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "QUALMON_SECRET is not set"),
        ({"QUALMON_SECRET": "short"}, "too short"),
        ({"QUALMON_SECRET": SECRET, "QUALMON_PORT": "http"}, "QUALMON_PORT"),
        ({"QUALMON_SECRET": SECRET, "QUALMON_MAX_LEGS": "0"}, "QUALMON_MAX_LEGS"),
        ({"QUALMON_SECRET": SECRET, "QUALMON_VAD_MODE": "9"}, "QUALMON_VAD_MODE"),
        ({"QUALMON_SECRET": SECRET, "QUALMON_SPEECH": "maybe"}, "QUALMON_SPEECH"),
        ({**HOOK, "QUALMON_WEBHOOK_URL": "ftp://h/x?token=t"}, "http:// or https://.*'ftp'"),
        ({**HOOK, "QUALMON_WEBHOOK_URL": "https:///x"}, "QUALMON_WEBHOOK_URL has no host"),
        ({**HOOK, "QUALMON_WEBHOOK_URL": "http://h:port/"}, "QUALMON_WEBHOOK_URL is not a valid"),
        ({**HOOK, "QUALMON_WEBHOOK_SECRET": ""}, "QUALMON_WEBHOOK_SECRET is not:"),
        ({**HOOK, "QUALMON_WEBHOOK_SECRET": "short"}, "QUALMON_WEBHOOK_SECRET is too short"),
        ({**HOOK, "QUALMON_WEBHOOK_SECRET": SECRET}, "must differ from QUALMON_SECRET"),
        ({**HOOK, "QUALMON_WEBHOOK_URL": ""}, "but QUALMON_WEBHOOK_URL is not"),
        ({**HOOK, "QUALMON_WEBHOOK_TIMEOUT_SECONDS": "0"}, "QUALMON_WEBHOOK_TIMEOUT_SECONDS"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as caught:
        settings_from_env(env)
    assert "t0k" not in str(caught.value)  # the URL's query may carry the receiver's token


def test_webhook_settings() -> None:
    """Off by default; URL, secret and timeout from the environment; no secret in repr."""
    off = settings_from_env({"QUALMON_SECRET": SECRET})
    assert off.webhook_url is None and off.webhook_secret is None
    settings = settings_from_env({**HOOK, "QUALMON_WEBHOOK_TIMEOUT_SECONDS": "2.5"})
    assert settings.webhook_url == HOOK["QUALMON_WEBHOOK_URL"]
    assert settings.webhook_secret == "h" * 32
    assert settings.webhook_timeout_seconds == 2.5
    assert "h" * 32 not in repr(settings) and "t0k" not in repr(settings)
