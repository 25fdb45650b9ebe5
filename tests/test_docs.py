"""The documentation keeps up with the code (like Datasette's test_docs.py).

docs/hooks.md is what ``trellis.hookdocs`` generates from the hookspecs (every
hookspec with its own heading, from its docstring), and every variable in ``trellis.config.ENVIRONMENT`` appears
in docs/operations.md.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from trellis import config, hookspecs

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _hookspecs() -> list[tuple[str, list[str]]]:
    """``(name, argument names)`` of every function marked ``@hookspec``."""
    marker = f"{hookspecs.hookspec.project_name}_spec"
    return [
        (name, list(inspect.signature(func).parameters))
        for name, func in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(func, marker)
    ]


HOOKSPECS = _hookspecs()


@pytest.fixture(scope="module")
def hooks_md() -> str:
    return (DOCS / "hooks.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def operations_md() -> str:
    return (DOCS / "operations.md").read_text(encoding="utf-8")


def test_hookspecs_were_found():
    names = [name for name, _ in HOOKSPECS]
    assert "trellis_manifest" in names and "trellis_demo_data" in names
    assert all(name.startswith("trellis_") for name in names)


@pytest.mark.parametrize("name,args", HOOKSPECS, ids=[name for name, _ in HOOKSPECS])
def test_every_hookspec_is_documented(hooks_md, name, args):
    heading = f"### `{name}({', '.join(args)})`"
    assert re.search(rf"^{re.escape(heading)}\s*$", hooks_md, re.MULTILINE), (
        f"docs/hooks.md has no heading {heading!r}")
    assert inspect.getdoc(getattr(hookspecs, name)), f"{name} has no docstring"


def test_no_documented_hook_is_missing_from_the_hookspecs(hooks_md):
    documented = set(re.findall(r"^### `(trellis_\w+)\(", hooks_md, re.MULTILINE))
    assert documented == {name for name, _ in HOOKSPECS}


def test_the_hook_reference_is_generated_from_the_hookspecs(hooks_md):
    from trellis import hookdocs

    assert hooks_md == hookdocs.render(), (
        "docs/hooks.md is out of date: python -m trellis.hookdocs > docs/hooks.md")


def test_docstring_markup_becomes_markdown():
    from trellis.hookdocs import markdown

    assert markdown("""Use :func:`trellis.jobs.enqueue` or :class:`~trellis.specs.JobSpec`,
    and ``x``::

        enqueue("a")

    Done.""") == ("Use `trellis.jobs.enqueue` or `JobSpec`,\nand `x`:\n\n```python\n"
                  'enqueue("a")\n```\n\nDone.')


@pytest.mark.parametrize("variable", [name for name, _, _ in config.ENVIRONMENT])
def test_every_environment_variable_is_documented(operations_md, variable):
    assert f"`{variable}`" in operations_md, f"docs/operations.md does not mention {variable}"


def test_the_guide_test_is_the_example_plugins_test():
    """The test shown in docs/plugins.md is the one the suite runs."""
    guide = (DOCS / "plugins.md").read_text()
    start = guide.index("```python\n", guide.index("examples/callnotes/tests/test_callnotes.py"))
    block = guide[start + len("```python\n"):guide.index("```", start + 10)]
    shipped = (DOCS.parent / "examples" / "callnotes" / "tests" / "test_callnotes.py").read_text()
    assert shipped.endswith(block)
