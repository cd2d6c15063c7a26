"""The README and the pages under docs/ link only to files (and images) that exist."""
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_relative_links_of_readme_and_docs_point_to_existing_files():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, f"links to missing files: {broken}"


def test_readme_keeps_to_the_users_path():
    size = (ROOT / "README.md").stat().st_size
    assert size < 15 * 1024, f"README.md is {size} bytes: reference material belongs under docs/"
