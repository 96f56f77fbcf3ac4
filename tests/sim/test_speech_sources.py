"""Fetching the corpus recordings: once, only what is listed, and a one-line reason if not."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from qualmon.sim import speech_sources
from qualmon.sim.speech_sources import (
    CACHE_ENV,
    PACKAGES,
    SourcesUnavailable,
    clip_file,
    default_cache_dir,
    fetch_speech_sources,
)


class FakeApt:
    """apt-get and dpkg-deb as subprocess.run sees them: .deb files whose tar holds every
    listed clip, the copyright file and one file nobody asked for."""

    def __init__(self, *, download_error: str | None = None, missing: bool = False) -> None:
        self.download_error = download_error
        self.missing = missing
        self.calls: list[list[str]] = []

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        self.calls.append(command)
        if self.missing:
            raise FileNotFoundError(command[0])
        if command[:2] == ["apt-get", "download"]:
            if self.download_error:
                return subprocess.CompletedProcess(command, 100, "", self.download_error)
            Path(kwargs["cwd"], f"{command[-1]}_1.0-1_all.deb").write_bytes(b"!<arch>")
        elif command[0] == "dpkg-deb":
            kwargs["stdout"].write(self._tar(Path(command[-1]).name.split("_")[0]))
        return subprocess.CompletedProcess(command, 0, "", "")

    @staticmethod
    def _tar(name: str) -> bytes:
        package = next(p for p in PACKAGES if p.name == name)
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            paths = [c.path for c in package.clips] + [package.copyright_path, "usr/bin/other"]
            for path in paths:
                data = f"content of {path}".encode()
                info = tarfile.TarInfo("./" + path)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return out.getvalue()

    def commands(self, program: str) -> list[list[str]]:
        return [c for c in self.calls if c[0] == program]


def test_fetch_unpacks_only_the_listed_files(tmp_path: Path) -> None:
    apt = FakeApt()
    root = fetch_speech_sources(tmp_path, run=apt)
    assert root == tmp_path
    for package in PACKAGES:
        for clip in package.clips:
            assert clip_file(root, package, clip).read_text() == f"content of {clip.path}"
        copyright_file = root / package.name / "copyright"
        assert copyright_file.read_text() == f"content of {package.copyright_path}"
    assert not list(tmp_path.rglob("other"))
    assert len(apt.commands("apt-get")) == len(PACKAGES)
    assert sorted(p.name for p in (tmp_path / "debs").iterdir()) == sorted(
        f"{p.name}_1.0-1_all.deb" for p in PACKAGES
    )


def test_fetch_is_idempotent(tmp_path: Path) -> None:
    """A complete cache is used as it is; cached .deb files are unpacked, not downloaded."""
    fetch_speech_sources(tmp_path, run=FakeApt())
    again = FakeApt()
    fetch_speech_sources(tmp_path, run=again)
    assert again.calls == []
    first = PACKAGES[0]
    clip_file(tmp_path, first, first.clips[0]).unlink()
    repair = FakeApt()
    fetch_speech_sources(tmp_path, run=repair)
    assert repair.commands("apt-get") == []
    assert len(repair.commands("dpkg-deb")) == len(PACKAGES)
    assert clip_file(tmp_path, first, first.clips[0]).is_file()


@pytest.mark.parametrize("root", [True, False], ids=["root", "user"])
def test_unknown_package_updates_the_lists_once_as_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root: bool
) -> None:
    monkeypatch.setattr(speech_sources.os, "geteuid", lambda: 0 if root else 1000)
    apt = FakeApt(
        download_error="W: some warning\nE: Unable to locate package asterisk-core-sounds-en-wav\n"
    )
    with pytest.raises(SourcesUnavailable) as raised:
        fetch_speech_sources(tmp_path, run=apt)
    message = str(raised.value)
    assert "\n" not in message
    assert "apt-get download asterisk-core-sounds-en-wav" in message
    assert "E: Unable to locate package" in message
    updates = [c for c in apt.commands("apt-get") if c[1] == "update"]
    assert len(updates) == (1 if root else 0)
    assert ("apt-get update as root" in message) is not root
    assert not (tmp_path / "complete.json").exists()


def test_offline_fails_at_once_without_an_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(speech_sources.os, "geteuid", lambda: 0)
    apt = FakeApt(
        download_error="Err:1 http://deb.debian.org/debian bookworm/main\n"
        "E: Failed to fetch http://deb.debian.org/… Could not connect to deb.debian.org\n"
    )
    with pytest.raises(SourcesUnavailable, match=r"E: Failed to fetch .* Could not connect"):
        fetch_speech_sources(tmp_path, run=apt)
    assert apt.commands("apt-get") == [["apt-get", "download", "-q", PACKAGES[0].name]]


def test_without_apt_the_reason_says_so(tmp_path: Path) -> None:
    with pytest.raises(SourcesUnavailable, match="no apt-get here"):
        fetch_speech_sources(tmp_path, run=FakeApt(missing=True))


def test_cache_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(CACHE_ENV)
    assert default_cache_dir().parts[-2:] == (".cache", "speech-sources")


def test_real_fetch_needs_no_second_download(corpus: Any) -> None:
    """Where the recordings can be had (CI runs as root), a second fetch calls nothing."""

    def refuse(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        raise AssertionError(f"ran {command}")

    assert fetch_speech_sources(corpus.root, run=refuse) == corpus.root
