"""docs/deploy.md: every shell block is either run by a named test or says why it is not."""

from __future__ import annotations

import re

from tests.helpers import ROOT

DOC = ROOT / "docs" / "deploy.md"
BLOCKS = re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)


def test_every_shell_block_is_run_by_a_test_or_marked_untested() -> None:
    assert len(BLOCKS) >= 10
    for block in BLOCKS:
        first = block.splitlines()[0]
        tested = re.fullmatch(r"# tested: (tests/[\w/]+\.py)::(\w+)", first)
        if tested:
            source = (ROOT / tested.group(1)).read_text()
            assert re.search(rf"^def {tested.group(2)}\(", source, re.M), first
        else:
            assert re.fullmatch(r"# untested[^:]*: .{10,}", first), f"'# tested: ...' or '# untested: why':\n{block}"


def test_blocks_run_from_the_docs_are_found_by_their_test() -> None:
    """A test that runs a block of the docs reads it by its own name (doc_block), so the marker cannot lie."""
    engine_tests = (ROOT / "tests" / "test_container_engine.py").read_text()
    for name in re.findall(r"# tested: tests/test_container_engine\.py::(\w+)", DOC.read_text()):
        assert f'doc_block("{name}")' in engine_tests or name == "test_smoke_script_passes", name
