"""Settings from any environment: Settings or ConfigError, nothing else; and settings that
are accepted build an app and rules that tick."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

import qualmon.config
from qualmon.config import ConfigError, Settings, settings_from_env
from qualmon.core.warnings import (
    _FLOAT_FIELDS,
    _INT_FIELDS,
    DEFAULT_RULES,
    WarningEngine,
    override_rules,
)
from qualmon.service.app import create_app
from qualmon.service.metrics import QualmonMetrics

from .fuzzing import examples, nasty_text, numbers

pytestmark = pytest.mark.fuzz

SECRET = "s" * 40
KINDS = [rule.kind for rule in DEFAULT_RULES]
FIELDS = [*_FLOAT_FIELDS, *_INT_FIELDS, "enabled"]


def rule_items() -> st.SearchStrategy[str]:
    """One `kind.field=value`, mostly well-formed around its value."""
    value = st.one_of(
        numbers(),
        st.sampled_from(["on", "off", "TRUE", "0", "1", "yes", "", " 2 ", "0.5", "3"]),
        nasty_text(),
    )
    well_formed = st.builds(
        lambda k, f, v: f"{k}.{f}={v}", st.sampled_from(KINDS), st.sampled_from(FIELDS), value
    )
    return st.one_of(well_formed, well_formed, nasty_text(max_size=30))


RULE_TEXT = st.lists(rule_items(), max_size=4).map(",".join)


def values_for(name: str) -> st.SearchStrategy[str]:
    """Plausible and hostile values for one variable."""
    plausible = {
        "QUALMON_SECRET": st.sampled_from([SECRET, "short", "", "x" * 32]),
        "QUALMON_HOST": st.sampled_from(["127.0.0.1", "::1", "0.0.0.0", "localhost", "host name"]),
        "QUALMON_ICE_ADDRESSES": st.sampled_from(
            ["127.0.0.1", "127.0.0.1, ::1", "::1,", "localhost", "192.0.2.1.5", "1.2.3.4,x", ","]
        ),
        "QUALMON_SPEECH": st.sampled_from(["on", "off", "maybe", "TRUE"]),
        "QUALMON_FAST_RTP": st.sampled_from(["on", "off", "perhaps", "0"]),
        "QUALMON_TALK_BALANCE": st.sampled_from(["on", "off", "0", "yes"]),
        "QUALMON_VAD_MODE": st.sampled_from(["0", "3", "4", "٣", " 2"]),
        "QUALMON_WARNING_RULES": RULE_TEXT,
        "QUALMON_WEBHOOK_URL": st.sampled_from(
            ["https://hooks.example/q", "http://[::1", "ftp://x", "http://", "https://h:99999/"]
        ),
        "QUALMON_WEBHOOK_SECRET": st.sampled_from(["h" * 32, "short", SECRET]),
        "QUALMON_DB": st.sampled_from([":memory:", "qualmon.db", "/nonexistent/dir/q.db"]),
        "QUALMON_RTP_PORTS": st.sampled_from(
            ["40000-40999", "5004-5004", "1-65535", "9-8", "0-1", "40000", "4-٣", " 1 - 2 ", "-"]
        ),
        "QUALMON_RTP_HOST": st.sampled_from(["127.0.0.1", "::1", "0.0.0.0", "::", "localhost"]),
        "QUALMON_JANUS_URL": st.sampled_from(
            ["http://janus:8088/janus", "https://[::1]:8089/janus/", "ftp://x", "http://", "x"]
        ),
        "QUALMON_JANUS_ADMIN_KEY": st.sampled_from(["k" * 16, "short", "k" * 15 + "\n"]),
        "QUALMON_JANUS_EVENTS_SECRET": st.sampled_from(["e" * 32, "", "é" * 20]),
        "QUALMON_INTERNAL_PORT": st.sampled_from(["9000", "0", "65536", "-1", "٣", " 80 "]),
        "QUALMON_REUSE_PORT": st.sampled_from(["on", "off", "1", "yes", ""]),
        "QUALMON_INSTANCE_ID": st.sampled_from(["qm-0", "a.b_c", "x" * 65, "é", "a b", ""]),
        "QUALMON_ADVERTISE_URL": st.sampled_from(
            ["http://qm-0.qm:8080", "https://[::1]:8443/", "http://h/x", "ftp://h", "http://"]
        ),
        "QUALMON_LOCALE": st.sampled_from(
            ["de", "pt-BR", "pt_br", "NL", "pt", "de-AT", "ja", "qps", " fr ", "ｄｅ", "e\u0301s"]
        ),
    }.get(name, numbers())
    return st.one_of(plausible, nasty_text(max_size=30), numbers())


NAMES = (
    "QUALMON_SECRET",
    "QUALMON_HOST",
    "QUALMON_PORT",
    "QUALMON_MAX_LEGS",
    "QUALMON_DB",
    "QUALMON_RETENTION_DAYS",
    "QUALMON_ICE_ADDRESSES",
    "QUALMON_SPEECH",
    "QUALMON_FAST_RTP",
    "QUALMON_VAD_MODE",
    "QUALMON_MIC_SILENT_SECONDS",
    "QUALMON_TALK_BALANCE",
    "QUALMON_WARNING_RULES",
    "QUALMON_WEBHOOK_URL",
    "QUALMON_WEBHOOK_SECRET",
    "QUALMON_WEBHOOK_TIMEOUT_SECONDS",
    "QUALMON_MEMORY_TRIM_SECONDS",
    "QUALMON_RTP_PORTS",
    "QUALMON_RTP_HOST",
    "QUALMON_JANUS_URL",
    "QUALMON_JANUS_ADMIN_KEY",
    "QUALMON_JANUS_EVENTS_SECRET",
    "QUALMON_DRAIN_SECONDS",
    "QUALMON_INTERNAL_PORT",
    "QUALMON_REUSE_PORT",
    "QUALMON_INSTANCE_ID",
    "QUALMON_ADVERTISE_URL",
    "QUALMON_LOCALE",
)
"Every variable qualmon/config.py reads."


def test_names_are_every_variable_config_reads() -> None:
    """A variable added to qualmon/config.py is fuzzed too (names in its source, messages
    included, are all variables it reads)."""
    source = Path(qualmon.config.__file__).read_text(encoding="utf-8")
    assert set(re.findall(r"QUALMON_[A-Z][A-Z_]*", source)) == set(NAMES)


@st.composite
def environments(draw: st.DrawFn) -> dict[str, str]:
    names = draw(st.sets(st.sampled_from(NAMES)))
    env = {"QUALMON_SECRET": SECRET}
    env.update({name: draw(values_for(name)) for name in sorted(names)})
    return env


def ticks(rules: tuple[Any, ...]) -> None:
    """A few engine ticks over every rule with bad, good and unknown values."""
    engine = WarningEngine(rules=rules)
    for i, value in enumerate([1e9, 1e9, 1e9, 0.0, None, 0.0, -1e9, 1e9]):
        values = {(rule.kind, "client"): value for rule in rules}
        engine.evaluate(1000.0 + 0.5 * i, values)


@examples()
@given(env=environments())
@example(env={"QUALMON_SECRET": SECRET, "QUALMON_ICE_ADDRESSES": "localhost"})
@example(env={"QUALMON_SECRET": SECRET, "QUALMON_WARNING_RULES": "high_rtt.threshold=٣"})
@example(env={"QUALMON_SECRET": SECRET, "QUALMON_WARNING_RULES": "high_rtt.raise_m=1" + "0" * 30})
def test_any_environment_gives_settings_or_a_config_error(env: dict[str, str]) -> None:
    """Every QUALMON_* variable with any value: Settings or ConfigError (one message, naming
    the variable), never another exception; accepted settings build the app and their
    warning rules tick."""
    try:
        settings = settings_from_env(env)
    except ConfigError as exc:
        assert str(exc)
        return
    assert isinstance(settings, Settings)
    create_app(settings, metrics=QualmonMetrics(CollectorRegistry()))
    ticks(settings.warning_rules)


@examples()
@given(text=RULE_TEXT)
def test_any_rule_text_gives_rules_or_a_value_error(text: str) -> None:
    """override_rules takes `kind.field=value,…` or raises ValueError; what it accepts holds
    ASCII-written, finite numbers and ticks without an exception."""
    try:
        rules = override_rules(DEFAULT_RULES, text)
    except ValueError:
        return
    for item in filter(None, (part.strip() for part in text.split(","))):
        assert item.isascii(), item
    ticks(rules)
