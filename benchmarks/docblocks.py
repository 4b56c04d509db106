"""Generated blocks in the Markdown docs: text that a command writes, never a hand.

A block is delimited by two HTML comments (invisible on GitHub)::

    <!-- generated:NAME -->
    ...text written by the command...
    <!-- end -->

``NAME`` is lower-case letters, digits and dashes, unique within a file; blocks do not nest.
:func:`blocks` reads them (raising :class:`DocBlockError` for a malformed file),
:func:`replace_blocks` rewrites some of them in place and leaves the rest of the page alone.

Who writes which block:

* ``make bench`` (``python -m benchmarks``) writes the measured ones: the demo tables of
  docs/diffusion.md (section ``demos``), the digits notes and speed table beside them (section
  ``digits_notes``) and the timings quoted in README.md;
* ``python -m benchmarks.docblocks`` writes the ones copied from the code and the shipped files
  (the adapter contract in docs/plugins.md, quoted from the ``register_adapters`` hookspec; the
  training records of the shipped CALM models in docs/calm.md and docs/endpoints.md, from the
  ``training`` and ``eval_answer_law`` fields their training scripts wrote into
  ``demo_model.json`` and ``answers_model.json``); ``--check`` exits 1 when one is stale.
  ``tests/test_docblocks.py`` checks every page's blocks are well formed and the code-copied
  ones are current.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPEN = re.compile(r"<!-- generated:([a-z0-9-]+) -->")
END = "<!-- end -->"
_ANY = re.compile(r"<!-- generated:([^ ]*) -->|<!-- end -->")


class DocBlockError(ValueError):
    """A docs page's generated blocks are malformed, or a block to rewrite is missing."""


def blocks(text: str, where: str = "text") -> dict[str, str]:
    """``{name: body}`` of every generated block in ``text`` (body without the marker lines)."""
    found: dict[str, str] = {}
    open_name: str | None = None
    start = 0
    for match in _ANY.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        if match.group(0) == END:
            if open_name is None:
                raise DocBlockError(f"{where}:{line}: {END} without an open generated block")
            found[open_name] = text[start : match.start()].strip("\n")
            open_name = None
            continue
        name = match.group(1)
        if not OPEN.fullmatch(match.group(0)):
            raise DocBlockError(
                f"{where}:{line}: bad block name {name!r} (lower-case letters, digits, dashes)"
            )
        if open_name is not None:
            raise DocBlockError(
                f"{where}:{line}: block {name!r} opens inside block {open_name!r} (no nesting)"
            )
        if name in found:
            raise DocBlockError(f"{where}:{line}: block {name!r} appears twice")
        open_name, start = name, match.end()
    if open_name is not None:
        raise DocBlockError(f"{where}: block {open_name!r} is never closed with {END}")
    return found


def replace_blocks(text: str, bodies: dict[str, str], where: str = "text") -> str:
    """``text`` with the body of each block named in ``bodies`` replaced; every name must be
    present (a missing one raises: a page that lost its markers would silently go stale)."""
    present = blocks(text, where)
    missing = sorted(set(bodies) - set(present))
    if missing:
        raise DocBlockError(f"{where}: no generated block(s) {missing} to rewrite")
    for name, body in bodies.items():
        pattern = re.compile(
            rf"(<!-- generated:{re.escape(name)} -->\n).*?(\n?{re.escape(END)})", re.DOTALL
        )
        text = pattern.sub(lambda m, b=body: m.group(1) + b.strip("\n") + "\n" + END, text)
    return text


def update_file(path: Path, bodies: dict[str, str]) -> bool:
    """Rewrite the named blocks of ``path``; True when the file changed."""
    old = path.read_text(encoding="utf-8")
    new = replace_blocks(old, bodies, str(path))
    if new != old:
        path.write_text(new, encoding="utf-8")
    return new != old


def _record(path: str) -> dict:
    import json

    return dict(json.loads((ROOT / "implicit_temperature" / path).read_text(encoding="utf-8")))


def calm_training_note() -> str:
    """How long the shipped demo CALM took to train, from ``demo_model.json``."""
    record = _record("demos/calm/demo_model.json")
    t, ev = record["training"], record["eval_next_chunk_tv_to_grammar"]
    ae, calm, threads = t["seconds_autoencoder"], t["seconds_calm"], t["cpu_threads"]
    tvs = [e["tv"] for e in ev.values()]
    off = [100 * e["off_grammar"] for e in ev.values()]
    draws = t["args"]["eval_draws"]
    return (
        f"The shipped weights took {ae + calm:.0f} s of wall time ({ae:.0f} s autoencoder, "
        f"{calm:.0f} s CALM, {threads} torch thread; recorded in `demo_model.json`) on a 2-core "
        "CPU machine shared with other jobs. The evaluation recorded there: for one prompt per "
        f"grammar context, the TV between the model's next-chunk law ({draws} draws) and the "
        f"grammar's is {min(tvs):.3f}-{max(tvs):.3f} ({ev['cat ']['tv']:.3f} after `cat `), and "
        f"{min(off):.1f}-{max(off):.1f} % of draws decode to a chunk outside the grammar."
    )


def answers_model_note() -> str:
    """The shipped answers model's training time and answer law, from ``answers_model.json``."""
    record = _record("demos/answers/answers_model.json")
    t, ev = record["training"], record["eval_answer_law"]
    seconds = t["seconds_autoencoder"] + t["seconds_calm"]
    return (
        f"The trained model is right {100 * ev['right_share_mean']:.0f}% of the time on average "
        f"({100 * ev['right_share_min']:.0f}% to {100 * ev['right_share_max']:.0f}% per "
        f"question; its answer law is {ev['answer_tv_mean']:.2f} in total variation from the "
        f"designed one, from {ev['draws_per_question']} draws per question; training took "
        f"{seconds:.0f} s of wall time on {t['cpu_threads']} torch thread; all recorded in "
        "`answers_model.json`), which is why the tests take P from a T = 1 pool."
    )


def code_blocks() -> dict[Path, dict[str, str]]:
    """The blocks whose text is copied from the code and the shipped files, by page."""
    from implicit_temperature.plugins.hookspecs import adapter_contract

    return {
        ROOT / "docs" / "plugins.md": {"adapter-contract": adapter_contract()},
        ROOT / "docs" / "calm.md": {"calm-training": calm_training_note()},
        ROOT / "docs" / "endpoints.md": {"answers-model": answers_model_note()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.docblocks",
        description="Rewrite the docs blocks copied from the code (the adapter contract).",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a block is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, bodies in code_blocks().items():
        current = blocks(path.read_text(encoding="utf-8"), str(path))
        for name, body in bodies.items():
            if current.get(name) != body.strip("\n"):
                stale.append(f"{path.relative_to(ROOT)}: {name}")
        if not args.check:
            update_file(path, bodies)
    if args.check and stale:
        print("stale generated blocks: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
