"""Settings from the environment and flags: defaults, overrides, clear errors."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from qualmon.cli import build_parser
from qualmon.cluster.identity import advertise_url_of, instance_id_of
from qualmon.config import ConfigError, server_overrides, settings_from_env
from qualmon.core.warnings import DEFAULT_RULES

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
    assert settings.speech_enabled and settings.vad_mode == 3
    assert settings.speech.mic_silent_after_seconds == 30.0
    assert not next(r for r in settings.warning_rules if r.kind == "talk_balance").enabled


def test_environment_and_flags() -> None:
    env = {
        "QUALMON_SECRET": SECRET,
        "QUALMON_PORT": "9000",
        "QUALMON_MAX_LEGS": "7",
        "QUALMON_ICE_ADDRESSES": "127.0.0.1, ::1",
        "QUALMON_SPEECH": "off",
        "QUALMON_VAD_MODE": "1",
        "QUALMON_MIC_SILENT_SECONDS": "12",
        "QUALMON_TALK_BALANCE": "on",
    }
    settings = settings_from_env(env, port=9100, host=None)
    assert settings.port == 9100  # a flag beats the environment
    assert settings.max_legs == 7
    assert settings.ice_addresses == ("127.0.0.1", "::1")
    assert not settings.speech_enabled
    assert settings.vad_mode == 1
    assert settings.speech.vad_overhang_seconds == 0.0  # the voice classifier trims ends
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
        (
            {"QUALMON_SECRET": SECRET, "QUALMON_WARNING_RULES": "high_los.threshold=1"},
            "QUALMON_WARNING_RULES: unknown warning kind 'high_los'",
        ),
        (
            {"QUALMON_SECRET": SECRET, "QUALMON_WARNING_RULES": "high_loss.severity=info"},
            "unknown field 'severity'",
        ),
        (
            {"QUALMON_SECRET": SECRET, "QUALMON_WARNING_RULES": "high_loss.threshold=lots"},
            "'lots' is not a valid threshold",
        ),
        (
            {"QUALMON_SECRET": SECRET, "QUALMON_WARNING_RULES": "high_loss.threshold=-1"},
            "must be a number",
        ),
        (
            {"QUALMON_SECRET": SECRET, "QUALMON_WARNING_RULES": "high_rtt.raise_n=9"},
            "raise_n ≤ raise_m",
        ),
        (
            {"QUALMON_SECRET": SECRET, "QUALMON_WARNING_RULES": "high_loss"},
            "not kind.field=value",
        ),
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


def test_warning_rule_overrides() -> None:
    """QUALMON_WARNING_RULES changes the named fields only; TALK_BALANCE still applies."""
    settings = settings_from_env(
        {
            "QUALMON_SECRET": SECRET,
            "QUALMON_TALK_BALANCE": "on",
            "QUALMON_WARNING_RULES": "high_loss.threshold=0.03, high_rtt.raise_n=1,"
            " mic_silent.enabled=off",
        }
    )
    rules = {r.kind: r for r in settings.warning_rules}
    defaults = {r.kind: r for r in DEFAULT_RULES}
    assert [r.kind for r in settings.warning_rules] == [r.kind for r in DEFAULT_RULES]
    assert rules["high_loss"] == replace(defaults["high_loss"], threshold=0.03)
    assert rules["high_rtt"] == replace(defaults["high_rtt"], raise_n=1)
    assert rules["mic_silent"].enabled is False
    assert rules["talk_balance"].enabled is True
    assert rules["low_mos"] == defaults["low_mos"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_non_finite_numbers_are_refused(value: str) -> None:
    """nan slips past a `<= 0` check and inf would keep reports forever: both refused."""
    for name in ("QUALMON_RETENTION_DAYS", "QUALMON_MIC_SILENT_SECONDS"):
        with pytest.raises(ConfigError, match=name):
            settings_from_env({"QUALMON_SECRET": SECRET, name: value})


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"max_legs": 0}, "--max-legs must be a positive number"),
        ({"max_legs": -3}, "--max-legs"),
        ({"port": -1}, "--port must be a port number 0..65535"),
        ({"port": 65536}, "--port"),
        ({"retention_days": float("nan")}, "retention_days"),
    ],
)
def test_flag_overrides_get_the_same_checks(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        settings_from_env({"QUALMON_SECRET": SECRET}, **overrides)


def test_port_zero_means_any_free_port() -> None:
    """The demo and the benches listen on port 0; the range check lets them."""
    assert settings_from_env({"QUALMON_SECRET": SECRET}, port=0).port == 0
    with pytest.raises(ConfigError, match="QUALMON_PORT"):
        settings_from_env({"QUALMON_SECRET": SECRET, "QUALMON_PORT": "70000"})


@pytest.mark.parametrize("name", ["QUALMON_SPEECH", "QUALMON_TALK_BALANCE", "QUALMON_FAST_RTP"])
def test_on_off_variables_take_the_same_words(name: str) -> None:
    """on/off/1/0/true/false in any case for both; anything else is an error, not 'off'."""
    assert settings_from_env({"QUALMON_SECRET": SECRET, name: ""}) == settings_from_env(
        {"QUALMON_SECRET": SECRET}
    )
    for word, on in [("on", True), ("TRUE", True), ("1", True), ("Off", False), ("0", False)]:
        settings = settings_from_env({"QUALMON_SECRET": SECRET, name: word})
        talk_balance = next(r for r in settings.warning_rules if r.kind == "talk_balance")
        enabled = {
            "QUALMON_SPEECH": settings.speech_enabled,
            "QUALMON_TALK_BALANCE": talk_balance.enabled,
            "QUALMON_FAST_RTP": settings.fast_rtp,
        }[name]
        assert enabled is on, word
    for garbage in ("yes", "enabled", "maybe"):
        with pytest.raises(ConfigError, match=f"{name} must be on or off"):
            settings_from_env({"QUALMON_SECRET": SECRET, name: garbage})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("QUALMON_PORT", "８０８０"),  # fullwidth: int() reads 8080
        ("QUALMON_PORT", "²"),
        ("QUALMON_MAX_LEGS", "٣"),  # int() reads 3
        ("QUALMON_MAX_LEGS", "1_0"),  # int() reads 10
        ("QUALMON_RETENTION_DAYS", "٣٠"),  # float() reads 30.0
        ("QUALMON_WEBHOOK_TIMEOUT_SECONDS", "1_0"),
    ],
)
def test_numbers_are_written_in_ascii(name: str, raw: str) -> None:
    """Digits from other scripts are refused by name, not read as Python would read them."""
    with pytest.raises(ConfigError, match=f"{name}=.* is not a valid"):
        settings_from_env({"QUALMON_SECRET": SECRET, name: raw})


def test_numbers_may_carry_surrounding_spaces() -> None:
    settings = settings_from_env(
        {"QUALMON_SECRET": SECRET, "QUALMON_PORT": " 9000 ", "QUALMON_RETENTION_DAYS": " 7.5"}
    )
    assert (settings.port, settings.retention_days) == (9000, 7.5)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [({"port": "8080"}, "--port must be an integer"), ({"max_legs": "7"}, "--max-legs must be")],
)
def test_overrides_of_the_wrong_type_are_config_errors(
    overrides: dict[str, object], needle: str
) -> None:
    """Checked with a raise, not an assert: under `python -O` an assert let "8080" through."""
    with pytest.raises(ConfigError, match=needle):
        settings_from_env({"QUALMON_SECRET": SECRET}, **overrides)


@pytest.mark.parametrize("value", ["٣", "0.٣", "1_0", "inf", "３"])
def test_warning_rule_numbers_are_written_in_ascii(value: str) -> None:
    """override_rules read values with float()/int(), so "٣" became 3.0: now a start-up error."""
    env = {"QUALMON_SECRET": SECRET, "QUALMON_WARNING_RULES": f"high_rtt.threshold={value}"}
    with pytest.raises(ConfigError, match=r"QUALMON_WARNING_RULES: .* is not a valid threshold"):
        settings_from_env(env)


def test_ice_addresses_are_ip_literals_checked_at_start_up() -> None:
    """QUALMON_ICE_ADDRESSES=localhost used to pass settings and raise ValueError only when
    the app was built; it is a ConfigError naming the variable now, and --ice-addresses too."""
    env = {"QUALMON_SECRET": SECRET, "QUALMON_ICE_ADDRESSES": " 127.0.0.1, ::0001,"}
    assert settings_from_env(env).ice_addresses == ("127.0.0.1", "::1")
    for bad in ("localhost", "127.0.0.1, 192.0.2.1.5", "١٢٧.0.0.1"):
        with pytest.raises(ConfigError, match=r"^QUALMON_ICE_ADDRESSES: .* is not an IP address"):
            settings_from_env({"QUALMON_SECRET": SECRET, "QUALMON_ICE_ADDRESSES": bad})
    args = build_parser().parse_args(["serve", "--ice-addresses", "127.0.0.1,host.local"])
    with pytest.raises(ConfigError, match=r"^--ice-addresses: 'host\.local' is not an IP address"):
        server_overrides(args)


def test_plain_rtp_ports_and_host() -> None:
    """A range `first-last` (spaces allowed around its parts) and an IP literal to send to."""
    settings = settings_from_env({"QUALMON_SECRET": SECRET})
    assert settings.rtp_ports == (40000, 40999) and settings.rtp_host == "127.0.0.1"
    env = {
        "QUALMON_SECRET": SECRET,
        "QUALMON_RTP_PORTS": " 5004 - 5005 ",
        "QUALMON_RTP_HOST": "::1",
    }
    settings = settings_from_env(env)
    assert settings.rtp_ports == (5004, 5005) and settings.rtp_host == "::1"
    single = {"QUALMON_SECRET": SECRET, "QUALMON_RTP_PORTS": "40000-40000"}
    assert settings_from_env(single).rtp_ports == (40000, 40000)


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("QUALMON_RTP_PORTS", "40000", "must be a port range like 40000-40999"),
        ("QUALMON_RTP_PORTS", "40000:40999", "must be a port range like 40000-40999"),
        ("QUALMON_RTP_PORTS", "4000٠-40999", "must be a port range like 40000-40999"),
        ("QUALMON_RTP_PORTS", "-40999", "must be a port range like 40000-40999"),
        ("QUALMON_RTP_PORTS", "40999-40000", "must be ports 1..65535 with first <= last"),
        ("QUALMON_RTP_PORTS", "0-10", "must be ports 1..65535 with first <= last"),
        ("QUALMON_RTP_PORTS", "65535-65536", "must be ports 1..65535 with first <= last"),
        ("QUALMON_RTP_HOST", "localhost", "is not an IP address"),
        ("QUALMON_RTP_HOST", "0.0.0.0", "must be an address senders can reach"),
        ("QUALMON_RTP_HOST", "::", "must be an address senders can reach"),
    ],
)
def test_bad_plain_rtp_settings_are_start_up_errors(name: str, value: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}.*{needle}"):
        settings_from_env({"QUALMON_SECRET": SECRET, name: value})


def test_drain_and_worker_settings() -> None:
    """Drain budget, internal port and SO_REUSEPORT: defaults, values, refusals by name."""
    defaults = settings_from_env({"QUALMON_SECRET": SECRET})
    assert (defaults.drain_seconds, defaults.internal_port, defaults.reuse_port) == (
        600.0,
        None,
        False,
    )
    settings = settings_from_env(
        {
            "QUALMON_SECRET": SECRET,
            "QUALMON_DRAIN_SECONDS": "2.5",
            "QUALMON_INTERNAL_PORT": " 9001 ",
            "QUALMON_REUSE_PORT": "on",
        }
    )
    assert (settings.drain_seconds, settings.internal_port, settings.reuse_port) == (
        2.5,
        9001,
        True,
    )
    for name, raw, needle in [
        ("QUALMON_DRAIN_SECONDS", "0", "QUALMON_DRAIN_SECONDS must be a positive number"),
        ("QUALMON_DRAIN_SECONDS", "inf", "QUALMON_DRAIN_SECONDS"),
        ("QUALMON_DRAIN_SECONDS", "٣", "QUALMON_DRAIN_SECONDS=.* is not a valid"),
        ("QUALMON_INTERNAL_PORT", "0", "QUALMON_INTERNAL_PORT must be a port number 1..65535"),
        ("QUALMON_INTERNAL_PORT", "65536", "QUALMON_INTERNAL_PORT must be a port number"),
        ("QUALMON_INTERNAL_PORT", "８０", "QUALMON_INTERNAL_PORT=.* is not a valid"),
        ("QUALMON_REUSE_PORT", "yes", "QUALMON_REUSE_PORT must be on or off"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            settings_from_env({"QUALMON_SECRET": SECRET, name: raw})


def test_instance_id_and_advertise_url() -> None:
    """Both optional; the defaults are `host-pid` and `http://host:port` (loopback for a
    wildcard listen address)."""
    env = {
        "QUALMON_SECRET": "s" * 40,
        "QUALMON_INSTANCE_ID": " qm-0.a_b ",
        "QUALMON_ADVERTISE_URL": "https://qm-0.qm.ns:8443/",
    }
    settings = settings_from_env(env)
    assert settings.instance_id == "qm-0.a_b" and instance_id_of(settings) == "qm-0.a_b"
    assert advertise_url_of(settings) == "https://qm-0.qm.ns:8443"
    default = settings_from_env({"QUALMON_SECRET": "s" * 40, "QUALMON_HOST": "0.0.0.0"})
    assert default.instance_id is None and default.advertise_url is None
    assert instance_id_of(default) == instance_id_of(default)
    assert instance_id_of(default).endswith(f"-{os.getpid()}")
    assert len(instance_id_of(default)) <= 64
    assert advertise_url_of(default) == "http://127.0.0.1:8080"
    assert advertise_url_of(replace(default, host="::", port=9)) == "http://[::1]:9"


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("QUALMON_INSTANCE_ID", "x" * 65, "1-64 ASCII"),
        ("QUALMON_INSTANCE_ID", "qm 0", "1-64 ASCII"),
        ("QUALMON_INSTANCE_ID", "qm-٣", "1-64 ASCII"),
        ("QUALMON_ADVERTISE_URL", "ftp://h", "http:// or https://"),
        ("QUALMON_ADVERTISE_URL", "http://", "http:// or https://"),
        ("QUALMON_ADVERTISE_URL", "http://h:99999", "not a valid URL"),
        ("QUALMON_ADVERTISE_URL", "http://h/qualmon", "no path"),
        ("QUALMON_ADVERTISE_URL", "http://h/?a=1", "no path"),
        ("QUALMON_ADVERTISE_URL", "http://u:p@h", "no path"),
    ],
)
def test_bad_cluster_settings_are_start_up_errors(name: str, value: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        settings_from_env({"QUALMON_SECRET": "s" * 40, name: value})
    assert needle in str(caught.value)


def test_locale_names_a_catalog() -> None:
    """QUALMON_LOCALE: en by default; a catalog's name in either spelling and any case."""
    assert settings_from_env({"QUALMON_SECRET": SECRET}).locale == "en"
    for raw, locale in (("de", "de"), (" pt-BR ", "pt_BR"), ("pt_br", "pt_BR"), ("NL", "nl")):
        assert settings_from_env({"QUALMON_SECRET": SECRET, "QUALMON_LOCALE": raw}).locale == (
            locale
        )


@pytest.mark.parametrize("value", ["ja", "pt", "de-AT", "english", "ｄｅ", "de;q=1", "qps"])
def test_a_locale_without_a_catalog_is_a_start_up_error(value: str) -> None:
    """No guessing for a setting: `pt` or `de-AT` would be a catalog's neighbour, not it."""
    with pytest.raises(
        ConfigError, match="QUALMON_LOCALE must be one of en, de, fr, es, pt_BR, nl"
    ):
        settings_from_env({"QUALMON_SECRET": SECRET, "QUALMON_LOCALE": value})
