"""The generated docs are current, and every picture they show exists."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_schedules_page_is_generated_from_the_registry():
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_schedule_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_schedule_has_a_section_and_a_picture():
    from lrtool.schedules import SCHEDULES

    page = (ROOT / "docs" / "schedules.md").read_text(encoding="utf-8")
    for name, spec in SCHEDULES.items():
        assert f"\n## {name}\n" in page
        assert spec.formula in page
        picture = ROOT / "docs" / "img" / f"schedule-{name}.png"
        assert png_size(picture) == (800, 500)


def test_docs_links_resolve():
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_every_test_the_docs_name_exists():
    """A promise names the test that keeps it true: that test must exist."""
    named = set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        named |= set(re.findall(r"tests/(test_\w+\.py)(?:::(\w+))?", doc.read_text()))
    assert named
    missing = []
    for file, test in named:
        path = ROOT / "tests" / file
        if not path.exists() or (test and f"def {test}(" not in path.read_text()):
            missing.append(f"{file}::{test}" if test else file)
    assert missing == []
