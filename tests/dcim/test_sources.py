"""Every source key cited in the code and data ([H1], [E2]...) resolves in docs/sources.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEY = re.compile(r"\[([A-Z]{1,3}\d{1,2})\]")
#: Where citations live: code, rule packs, profiles, docs (not the sources page itself).
CITING = ("dcim", "collectors", "simulators", "docs")
SUFFIXES = {".py", ".yaml", ".md"}


def cited() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for top in CITING:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in SUFFIXES or path.name == "sources.md" or not path.is_file():
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                for key in KEY.findall(line):
                    found.setdefault(key, []).append(f"{path.relative_to(ROOT)}:{number}")
    return found


def defined() -> set[str]:
    text = (ROOT / "docs" / "sources.md").read_text()
    return set(re.findall(r"^- \*\*\[([A-Z]{1,3}\d{1,2})\]\*\*", text, re.MULTILINE))


def test_every_cited_key_resolves_in_docs_sources() -> None:
    keys = cited()
    assert keys, "no citations found: the pattern or the folders are wrong"
    missing = {key: places[:3] for key, places in keys.items() if key not in defined()}
    assert not missing, f"keys cited but not in docs/sources.md: {missing}"


def test_nothing_cites_a_file_outside_the_repository() -> None:
    outside = []
    for top in CITING:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in SUFFIXES and path.is_file():
                for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if "REFERENCE" in line:
                        outside.append(f"{path.relative_to(ROOT)}:{number}")
    assert not outside, f"citations of a file a clone does not have: {outside}"
