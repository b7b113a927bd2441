"""House rule: no function over 80 lines (the whole def, docstring included) unless a
``# long: <reason>`` comment sits on the line directly above its ``def`` (or above its
first decorator).

Checked in ``ml/``, ``platform/lesionloop/`` (migrations excluded) and ``benchmarks/``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("ml", "platform/lesionloop", "benchmarks")
MAX_LINES = 80

# Platform functions still over the limit, if any. The set may only shrink: an entry
# that is no longer over the limit (or gone) fails the test until it is removed here.
PENDING: set[str] = set()

_Def = ast.FunctionDef | ast.AsyncFunctionDef


def _python_files() -> Iterator[Path]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" not in path.relative_to(ROOT).parts:
                yield path


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, _Def]]:
    """Every function and method, nested ones included, with a dotted qualified name."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name, node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def _length(node: _Def) -> int:
    """Lines from the ``def`` to the end of the body (decorators not counted)."""
    assert node.end_lineno is not None
    return node.end_lineno - node.lineno + 1


def _has_reason(lines: list[str], node: _Def) -> bool:
    """A ``# long: <reason>`` comment right above the ``def`` or its first decorator."""
    starts = {node.lineno}
    if node.decorator_list:
        starts.add(node.decorator_list[0].lineno)
    for start in starts:
        above = lines[start - 2].strip() if start >= 2 else ""
        if above.startswith("# long:") and above[len("# long:") :].strip():
            return True
    return False


def long_functions(source: str, rel: str) -> dict[str, bool]:
    """``{"rel::qualified.name": has a reason}`` for each function over ``MAX_LINES``."""
    lines = source.splitlines()
    return {
        f"{rel}::{name}": _has_reason(lines, node)
        for name, node in _functions(ast.parse(source, filename=rel))
        if _length(node) > MAX_LINES
    }


def _scan() -> dict[str, bool]:
    found: dict[str, bool] = {}
    for path in _python_files():
        found.update(long_functions(path.read_text(), path.relative_to(ROOT).as_posix()))
    return found


def test_no_function_over_80_lines_without_a_reason() -> None:
    found = _scan()
    offenders = sorted(k for k, reason in found.items() if not reason and k not in PENDING)
    assert not offenders, (
        f"functions over {MAX_LINES} lines: split them into named steps, or put "
        "'# long: <reason>' on the line above the def:\n  " + "\n  ".join(offenders)
    )


def test_pending_list_only_shrinks() -> None:
    assert all(k.startswith("platform/") for k in PENDING), "PENDING is for platform code only"
    found = _scan()
    done = sorted(k for k in PENDING if k not in found)
    assert not done, (
        f"no longer over {MAX_LINES} lines (or gone): remove from PENDING:\n  " + "\n  ".join(done)
    )


def _def(name: str, n_lines: int, indent: str = "") -> str:
    """Source of a function ``n_lines`` long (its ``def`` line included)."""
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(n_lines - 1))
    return f"{indent}def {name}():\n{body}"


def test_the_checker_counts_and_reads_reasons() -> None:
    over = MAX_LINES + 1
    source = "\n".join(
        [
            _def("at_the_limit", MAX_LINES),
            _def("plain", over),
            "# long: a reason\n" + _def("excused", over),
            "# long: a reason\n@decorator\n@other\n" + _def("decorated", over),
            "@decorator\n# long: a reason\n" + _def("below_decorator", over),
            "# long:\n" + _def("empty_reason", over),
            "# long: a reason\n\n" + _def("blank_line_between", over),
            "class C:\n    # long: a reason\n" + _def("method", over, "    "),
            "def outer():\n" + _def("inner", over, "    "),
        ]
    )
    assert long_functions(source, "m.py") == {
        "m.py::plain": False,
        "m.py::excused": True,
        "m.py::decorated": True,
        "m.py::below_decorator": True,
        "m.py::empty_reason": False,
        "m.py::blank_line_between": False,
        "m.py::C.method": True,
        "m.py::outer": False,
        "m.py::outer.inner": False,
    }
