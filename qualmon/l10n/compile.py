"""Compile every `.po` catalog into the `.mo` the service loads: `python -m qualmon.l10n.compile`.

Run by `make setup` (so `make demo` and `make test` have them on a fresh clone) and by the
wheel build (setup.py), never at request time. The .mo files are build output, not sources.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from .catalogs import DOMAIN, LOCALES_DIR


class CompileError(RuntimeError):
    """A catalog that must not be compiled as it is (its problems named)."""


def mo_bytes(po_path: Path) -> bytes:
    """The compiled form of one .po; CompileError if a translation breaks its format."""
    with po_path.open("rb") as file:
        catalog = read_po(file, domain=DOMAIN)
    problems = [
        f"{po_path}:{message.lineno}: {error}"
        for message, errors in catalog.check()
        for error in errors
    ]
    if problems:
        raise CompileError("\n".join(problems))
    out = io.BytesIO()
    # Fuzzy entries stay out, as with pybabel: an unchecked guess is no translation.
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def compile_catalogs(directory: Path = LOCALES_DIR) -> list[Path]:
    """Write each .po's .mo where it is missing or differs; the paths written."""
    written = []
    for po_path in sorted(directory.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        data = mo_bytes(po_path)
        mo_path = po_path.with_suffix(".mo")
        if not mo_path.exists() or mo_path.read_bytes() != data:
            mo_path.write_bytes(data)
            written.append(mo_path)
    return written


def main() -> int:
    try:
        written = compile_catalogs()
    except CompileError as exc:
        print(f"qualmon: catalogs not compiled:\n{exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"compiled {path.relative_to(LOCALES_DIR.parent.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
