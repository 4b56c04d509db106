"""The docs' generated blocks (``<!-- generated:NAME -->`` ... ``<!-- end -->``) are well formed,
the pages keep the blocks their commands rewrite, and the blocks copied from the code are current
(the adapter contract in docs/plugins.md is the ``register_adapters`` hookspec's, word for word).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import docblocks
from benchmarks.docblocks import DocBlockError, blocks, replace_blocks
from implicit_temperature import Adapter
from implicit_temperature.plugins.hookspecs import adapter_contract

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]

#: blocks each page must keep, so that the command that writes them has somewhere to write
EXPECTED = {
    "docs/plugins.md": {"adapter-contract"},
    "docs/diffusion.md": {"demo-ddpm", "demo-flow", "demo-digits"},
}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_page_has_well_formed_blocks(page):
    found = blocks(page.read_text(encoding="utf-8"), str(page))
    expected = EXPECTED.get(str(page.relative_to(ROOT)), set())
    assert expected <= set(found), sorted(expected - set(found))
    assert all(body.strip() for name, body in found.items()), "an empty generated block"


def test_the_adapter_contract_is_written_once_and_quoted():
    contract = adapter_contract()
    for member in ("``name``", "``handles(model)", "``__init__(model", "``draw(n,", "``quantize("):
        assert member in contract
    assert "``batched``" in contract and "active=None" in contract
    assert contract in (Adapter.__doc__ or "")
    page = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert blocks(page)["adapter-contract"] == contract
    assert docblocks.main(["--check"]) == 0


@pytest.mark.parametrize(
    "text, message",
    [
        ("<!-- generated:a -->\nx\n", "never closed"),
        ("x\n<!-- end -->\n", "without an open"),
        ("<!-- generated:a -->\n<!-- generated:b -->\n<!-- end -->\n", "inside block 'a'"),
        ("<!-- generated:a -->\n<!-- end -->\n<!-- generated:a -->\n<!-- end -->\n", "twice"),
        ("<!-- generated:Bad_Name -->\n<!-- end -->\n", "bad block name"),
    ],
)
def test_malformed_blocks_are_refused(text, message):
    with pytest.raises(DocBlockError, match=message):
        blocks(text)


def test_replace_rewrites_only_the_named_blocks_and_needs_them():
    text = (
        "head\n<!-- generated:a -->\nold a\n<!-- end -->\n"
        "mid\n<!-- generated:b -->\nold b\n<!-- end -->\ntail\n"
    )
    new = replace_blocks(text, {"a": "new a\nsecond line"})
    assert blocks(new) == {"a": "new a\nsecond line", "b": "old b"}
    assert new.startswith("head\n") and "\nmid\n" in new and new.endswith("tail\n")
    assert replace_blocks(new, {"a": "new a\nsecond line"}) == new  # idempotent
    with pytest.raises(DocBlockError, match=r"no generated block\(s\) \['c'\]"):
        replace_blocks(text, {"c": "x"})
