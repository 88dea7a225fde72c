"""The docs stay tied to the code: line 1 of every script links its docs page, and every line range a docs
page cites exists in its script and starts at the line that holds the code fragment the link names."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "algorithms").glob("*.py"))
PAGES = sorted((ROOT / "docs").glob("*.md"))
# [`fragment` ...](../algorithms/script.py#L10-L20)  or  ...#L10)
LINE_LINK = re.compile(r"\[`([^`]+)`[^\]]*\]\(\.\./algorithms/([\w.]+\.py)#L(\d+)(?:-L(\d+))?\)")


def cited_ranges(text: str):
    for match in LINE_LINK.finditer(text):
        fragment, script, first, last = match.groups()
        yield fragment, script, int(first), int(last or first)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_first_line_links_an_existing_docs_page(script):
    first_line = script.read_text().splitlines()[0]
    match = re.fullmatch(r"# docs and experiment results: (docs/[\w.]+\.md)", first_line)
    assert match, f"{script.name} line 1 must be '# docs and experiment results: docs/<page>.md', got {first_line!r}"
    assert (ROOT / match.group(1)).is_file(), f"{script.name} links {match.group(1)}, which does not exist"


def link_problems(text: str) -> list:
    problems = []
    for fragment, script, first, last in cited_ranges(text):
        path = ROOT / "algorithms" / script
        if not path.is_file():
            problems.append(f"{script} does not exist")
            continue
        lines = path.read_text().splitlines()
        if not 1 <= first <= last <= len(lines):
            problems.append(f"{script}#L{first}-L{last} is outside the file ({len(lines)} lines)")
        elif fragment not in lines[first - 1]:
            problems.append(f"{script}#L{first}-L{last} does not start at `{fragment}`")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_cited_line_ranges_hold_their_code(page):
    problems = link_problems(page.read_text())
    assert not problems, f"{page.name}: " + "; ".join(problems)


def test_every_script_has_a_page_with_line_references():
    for script in SCRIPTS:
        page = ROOT / "docs" / f"{script.stem}.md"
        assert page.is_file(), f"missing docs page {page.relative_to(ROOT)}"
        cited = {s for _, s, _, _ in cited_ranges(page.read_text())}
        assert script.name in cited, f"{page.name} cites no line of {script.name}"


def test_the_checker_catches_a_moved_range():
    """A link is stale when its range has moved off the code, and also when it only contains the code further down:
    the range must start at the line it names (guards against a vacuous test)."""
    lines = (ROOT / "algorithms" / "ppo_her.py").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "def relabel(" in line) + 1
    link = "[`def relabel(`, lines {0}-{1}](../algorithms/ppo_her.py#L{0}-L{1})"
    assert list(cited_ranges(link.format(start, start + 1))) == [("def relabel(", "ppo_her.py", start, start + 1)]
    assert link_problems(link.format(start, start + 1)) == []
    assert link_problems(link.format(1, 2)) == [f"ppo_her.py#L1-L2 does not start at `def relabel(`"]
    assert len(link_problems(link.format(start - 1, start))) == 1  # holds the line, does not start at it
