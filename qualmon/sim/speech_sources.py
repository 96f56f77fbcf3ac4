"""Real human speech for the corpus: which Debian packages hold it, fetched once into a cache.

Two voices, both redistributable: Allison Smith's Asterisk prompts (female, US English,
CC-BY-SA-3.0, credit "Allison Smith / Digium") and the male readers of pocketsphinx's test
data (a LibriVox reading of *Sense and Sensibility*, public domain, and CMU test utterances;
BSD-2 per Debian's copyright file). `apt-get download` fetches the packages (no install, no
root needed when the package lists are there); only the listed audio files and each
package's copyright file are unpacked. Nothing here is committed: the cache lives outside git.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_ENV = "QUALMON_CORPUS_CACHE"
STAMP = "complete.json"
UNKNOWN_PACKAGE = ("Unable to locate package", "has no installation candidate", "Can't select")
"What apt-get says when its package lists are missing or stale."


class SourcesUnavailable(RuntimeError):
    """The recordings cannot be had here (no apt, offline, no package lists); one line."""


@dataclass(frozen=True)
class Clip:
    """One recording inside a Debian package."""

    voice: str
    "The corpus voice it belongs to."
    path: str
    "Path inside the package (no leading ./)."
    rate: int
    "Sample rate in Hz (16-bit mono)."
    headerless: bool = False
    "Raw little-endian s16 without a WAV header."


@dataclass(frozen=True)
class SourcePackage:
    name: str
    "The Debian package."
    credit: str
    "Who to credit, as the package's copyright file asks."
    licence: str
    clips: tuple[Clip, ...]

    @property
    def copyright_path(self) -> str:
        return f"usr/share/doc/{self.name}/copyright"


_ALLISON = "usr/share/asterisk/sounds/en_US_f_Allison/"
# Speech-only prompts (no tones, no "[sound of monkeys]"), the longest first: ~380 s in all.
ALLISON_PROMPTS = (
    "demo-instruct priv-callee-options demo-congrats basic-pbx-ivr-main demo-echotest "
    "conf-adminmenu-18 screen-callee-options vm-options demo-abouttotry demo-moreinfo "
    "vm-msginstruct dir-intro confbridge-mute-extended demo-nogo tt-allbusy "
    "queue-periodic-announce vm-instructions vm-record-prepend demo-enterkeywords dir-instr "
    "vm-newuser vm-invalid-password vm-intro demo-thanks vm-rec-temp queue-youarenext "
    # single words: backchannel material ("oh", "em", "no", "thank you", "kay", "I'm sorry")
    "digits/oh letters/m vm-no auth-thankyou letters/k im-sorry"
).split()
_SPHINX = "usr/share/pocketsphinx/test/data/"
SPHINX_FILES = (
    *(f"librivox/sense_and_sensibility_01_austen_64kb-0{n}.wav" for n in (870, 880, 890, 920, 930)),
    *(f"cards/00{n}.wav" for n in range(1, 6)),
)
SPHINX_RAW = ("goforward.raw", "numbers.raw", "something.raw")

PACKAGES: tuple[SourcePackage, ...] = (
    SourcePackage(
        name="asterisk-core-sounds-en-wav",
        credit="Allison Smith / Digium (Asterisk core sounds, en_US_f_Allison)",
        licence="CC-BY-SA-3.0",
        clips=tuple(Clip("allison", f"{_ALLISON}{p}.wav", 8000) for p in ALLISON_PROMPTS),
    ),
    SourcePackage(
        name="pocketsphinx-testdata",
        credit="LibriVox (public domain reading) and Carnegie Mellon University test data",
        licence="BSD-2 (Debian copyright file); the LibriVox reading is public domain",
        clips=(
            *(Clip("reader", _SPHINX + f, 16000) for f in SPHINX_FILES),
            *(Clip("reader", _SPHINX + f, 16000, headerless=True) for f in SPHINX_RAW),
        ),
    ),
)

Runner = Callable[..., "subprocess.CompletedProcess[Any]"]


def default_cache_dir() -> Path:
    """$QUALMON_CORPUS_CACHE, else .cache/speech-sources in a source checkout, else ~/.cache."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():
        return checkout / ".cache" / "speech-sources"
    return Path.home() / ".cache" / "qualmon" / "speech-sources"


def clip_file(root: Path, package: SourcePackage, clip: Clip) -> Path:
    """Where a fetched clip lies in the cache."""
    return root / package.name / clip.path


def _spec_digest() -> str:
    spec = [(p.name, [c.path for c in p.clips]) for p in PACKAGES]
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]


def _complete(root: Path) -> bool:
    stamp = root / STAMP
    if not stamp.is_file():
        return False
    try:
        if json.loads(stamp.read_text(encoding="utf-8")).get("spec") != _spec_digest():
            return False
    except (ValueError, OSError):
        return False
    return all(
        clip_file(root, p, c).is_file() and (root / p.name / "copyright").is_file()
        for p in PACKAGES
        for c in p.clips
    )


def fetch_speech_sources(cache_dir: Path | None = None, *, run: Runner = subprocess.run) -> Path:
    """Download and unpack the recordings once; returns the cache root.

    Idempotent: with everything in place it returns at once, with the .deb files cached it
    only unpacks. Raises SourcesUnavailable with a one-line reason when that cannot work.
    """
    root = cache_dir or default_cache_dir()
    if _complete(root):
        return root
    debs = root / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    versions = {}
    for package in PACKAGES:
        deb = _cached_deb(debs, package.name) or _download(debs, package.name, run)
        versions[package.name] = deb.name
        _unpack(deb, package, root / package.name, run)
    stamp = {"spec": _spec_digest(), "debs": versions}
    (root / STAMP).write_text(json.dumps(stamp, indent=1) + "\n", encoding="utf-8")
    return root


def _cached_deb(debs: Path, name: str) -> Path | None:
    found = sorted(debs.glob(f"{name}_*.deb"))
    return found[-1] if found else None


def _download(debs: Path, name: str, run: Runner) -> Path:
    with tempfile.TemporaryDirectory(dir=debs) as tmp:
        result = _apt(["apt-get", "download", "-q", name], tmp, run)
        unknown = result.returncode != 0 and any(
            sign in (result.stderr or "") for sign in UNKNOWN_PACKAGE
        )
        if unknown and os.geteuid() == 0:
            # No package lists yet (a fresh container): fetch them once, then retry. Not on
            # network errors: offline, an update would only wait for its own timeouts.
            _apt(["apt-get", "update", "-q"], tmp, run)
            result = _apt(["apt-get", "download", "-q", name], tmp, run)
        if result.returncode != 0:
            hint = " (run apt-get update as root first)" if unknown and os.geteuid() else ""
            raise SourcesUnavailable(
                f"speech sources: `apt-get download {name}` failed: {_last_error(result)}{hint}"
            )
        fetched = _cached_deb(Path(tmp), name)
        if fetched is None:
            raise SourcesUnavailable(f"speech sources: apt-get download left no {name}_*.deb")
        return Path(shutil.move(fetched, debs / fetched.name))


def _apt(command: Sequence[str], cwd: str, run: Runner) -> subprocess.CompletedProcess[Any]:
    return _run(command, run, cwd=cwd, capture_output=True, text=True, timeout=600)


def _run(command: Sequence[str], run: Runner, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    try:
        return run(list(command), **kwargs)
    except FileNotFoundError as exc:
        raise SourcesUnavailable(
            f"speech sources: no {command[0]} here (a Debian or Ubuntu system is needed)"
        ) from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourcesUnavailable(f"speech sources: {' '.join(command[:2])}: {exc}") from exc


def _last_error(result: subprocess.CompletedProcess[Any]) -> str:
    lines = [line.strip() for line in (result.stderr or "").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E:")]
    return (errors or lines or [f"exit status {result.returncode}"])[-1]


def _unpack(deb: Path, package: SourcePackage, target: Path, run: Runner) -> None:
    """Only the clips and the copyright file, streamed from `dpkg-deb --fsys-tarfile`."""
    wanted = {c.path: target / c.path for c in package.clips}
    wanted[package.copyright_path] = target / "copyright"
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        tar_path = Path(tmp) / "data.tar"
        with tar_path.open("wb") as out:
            result = _run(["dpkg-deb", "--fsys-tarfile", str(deb)], run, stdout=out, timeout=300)
        if result.returncode != 0:
            raise SourcesUnavailable(f"speech sources: dpkg-deb cannot read {deb.name}")
        with tarfile.open(tar_path) as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name not in wanted or not member.isfile():
                    continue
                data = tar.extractfile(member)
                if data is None:
                    continue
                wanted[name].parent.mkdir(parents=True, exist_ok=True)
                wanted[name].write_bytes(data.read())
                del wanted[name]
    if wanted:
        raise SourcesUnavailable(f"speech sources: {deb.name} lacks {sorted(wanted)[0]}")
