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
    "docs/calm.md": {"calm-training"},
    "docs/endpoints.md": {"answers-model"},
    "docs/diffusion.md": {
        "demo-ddpm",
        "demo-flow",
        "demo-digits",
        "digits-classifier",
        "digits-batch-bias",
        "digits-hash",
        "digits-speed",
    },
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


def test_training_records_are_quoted_from_the_shipped_files():
    """docs/calm.md and docs/endpoints.md quote the shipped models' training records from their
    JSON (never by hand): the blocks hold the recorded figures and are current."""
    import json

    record = json.loads(
        (ROOT / "implicit_temperature/demos/calm/demo_model.json").read_text(encoding="utf-8")
    )["training"]
    note = docblocks.calm_training_note()
    assert f"{record['seconds_calm']:.0f} s CALM" in note
    assert blocks((ROOT / "docs/calm.md").read_text(encoding="utf-8"))["calm-training"] == note
    answers = blocks((ROOT / "docs/endpoints.md").read_text(encoding="utf-8"))["answers-model"]
    assert answers == docblocks.answers_model_note() and "answers_model.json" in answers


def test_digits_notes_write_every_block_they_own_from_their_result():
    """The digits_notes section's blocks come from its result (a hand-built one here): every
    figure of the result appears, and the page takes the bodies in place."""
    from benchmarks import bench_digits_notes as notes

    settings = notes.BATCH_SETTINGS
    result = {
        "quick": False,
        "law_samples": 4000,
        "p": [0.1] * 10,
        "accuracy": 0.9911,
        "pools": 40_000,
        "batch_tv": [{"t": t, "n": n, "tv": 0.001 * (i + 1)} for i, (t, n) in enumerate(settings)],
        "hash_distinct": {4: 27, 8: 99},
        "hash_draws": 100,
        "speed": {
            "digits: T=1": {
                "images_per_s_best": 500.0,
                "images_per_s_median": 400.0,
                "draws_per_image": 1.0,
                "slowdown_vs_T1": 1.0,
                "rounds": 5,
            }
        },
        "seconds": 1.0,
    }
    bodies = notes.doc_blocks(result)[notes.DOC_PAGE]
    assert set(bodies) == {"digits-classifier", "digits-batch-bias", "digits-hash", "digits-speed"}
    assert "**99.1 %**" in bodies["digits-classifier"]
    tvs = ", ".join(f"{0.001 * (i + 1):.3f}" for i in range(len(settings)))
    assert all(v in bodies["digits-batch-bias"] for v in tvs.split(", "))
    assert "27 % of 100 draws" in bodies["digits-hash"] and "99 %" in bodies["digits-hash"]
    assert "| T = 1, plain draws | 500 | 400 | 1 | 1× |" in bodies["digits-speed"]
    page = notes.DOC_PAGE.read_text(encoding="utf-8")
    rewritten = blocks(replace_blocks(page, bodies))
    assert all(rewritten[name] == body for name, body in bodies.items())
    assert notes.doc_blocks({**result, "quick": True}) == {}  # a quick run leaves the docs alone
