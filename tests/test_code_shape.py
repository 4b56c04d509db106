"""Code shape: no function of the package is longer than a screen.

A function body over ``MAX_BODY_LINES`` lines (its docstring excluded, nested functions included)
means a state type or a step is missing; this test names each offender with its length. The
limit holds for the whole package but the functions in ``NOT_YET_SPLIT`` (named one by one, so a
new long function anywhere still fails); an entry that is no longer long fails too, so the list
only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import implicit_temperature

MAX_BODY_LINES = 60
PACKAGE = Path(implicit_temperature.__file__).parent
#: (path relative to the package, function name) of the long functions not split yet
NOT_YET_SPLIT: set[tuple[str, str]] = set()


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the end of the function."""
    body = node.body
    first = body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        body = body[1:]
    if not body:
        return 0
    end = body[-1].end_lineno
    assert end is not None
    return end - body[0].lineno + 1


def long_function_nodes(
    root: Path, limit: int, base: Path = PACKAGE
) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef, int]]:
    """``(path relative to base, node, body lines)`` of every function under ``root`` whose body
    exceeds ``limit``, in file order."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = body_lines(node)
                if n > limit:
                    found.append((path.relative_to(base).as_posix(), node, n))
    return found


def long_functions(root: Path, limit: int, base: Path = PACKAGE) -> list[str]:
    """'path:line name (length)' of every function under ``root`` whose body exceeds ``limit``."""
    return [
        f"{path}:{node.lineno} {node.name} ({n})"
        for path, node, n in long_function_nodes(root, limit, base)
    ]


def test_body_lines_excludes_the_docstring_and_counts_nested_functions():
    src = (
        'def f():\n    """doc\n    more"""\n    x = 1\n'
        "    def g():\n        return x\n    return g\n"
    )
    (node,) = ast.parse(src).body
    assert isinstance(node, ast.FunctionDef)
    assert body_lines(node) == 4


def test_the_checker_finds_a_long_function(tmp_path):
    lines = "\n".join(f"    x{i} = {i}" for i in range(MAX_BODY_LINES + 1))
    (tmp_path / "m.py").write_text(f'def long():\n    """doc"""\n{lines}\n')
    found = long_functions(tmp_path, MAX_BODY_LINES, base=tmp_path)
    assert found == [f"m.py:1 long ({MAX_BODY_LINES + 1})"]
    assert long_functions(tmp_path, MAX_BODY_LINES + 1, base=tmp_path) == []


def test_no_function_is_longer_than_a_screen():
    found = long_function_nodes(PACKAGE, MAX_BODY_LINES)
    offenders = [
        f"{path}:{node.lineno} {node.name} ({n})"
        for path, node, n in found
        if (path, node.name) not in NOT_YET_SPLIT
    ]
    assert not offenders, f"functions over {MAX_BODY_LINES} lines: {offenders}"


def test_every_exemption_is_still_needed():
    """An exempted function that was split (or renamed) must leave NOT_YET_SPLIT."""
    long = {(path, node.name) for path, node, _ in long_function_nodes(PACKAGE, MAX_BODY_LINES)}
    stale = sorted(NOT_YET_SPLIT - long)
    assert not stale, f"no longer over {MAX_BODY_LINES} lines: remove {stale} from NOT_YET_SPLIT"


def test_one_positive_int_check():
    """The positive-integer check lives once, in core.options.positive_int; nothing else in the
    package spells it out again (the copies had drifted to 3 argument orders and 3 errors)."""
    import re

    copy = re.compile(r"not isinstance\(\w+, (int|numbers\.Integral)\) or \w+ < 1\b")
    found = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if copy.search(path.read_text())
    ]
    assert found == [], f"hand-written positive-int checks: {found}; use core.options.positive_int"
