"""The README's Python examples run as written, and its set-up commands are the Makefile's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_two_setup_commands_near_the_top():
    head = README.read_text().splitlines()[:8]
    assert any(line.startswith("make demo") for line in head)
    assert any(line.startswith("make test") for line in head)
    make = (README.parent / "Makefile").read_text()
    assert "\ndemo:" in make and "\ntest:" in make
    assert "make test" in (README.parent / ".ci" / "run").read_text()


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_block_runs(code, capsys):
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)


def test_custom_policy_example_is_short():
    custom = next(b for b in BLOCKS if "class " in b and "ADLPolicy" in b)
    body = [line for line in custom.splitlines() if line.strip()]
    assert len(body) < 30
