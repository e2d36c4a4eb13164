"""The docs describe the code as it is."""

from __future__ import annotations

from pathlib import Path

from quotewise.cli import app
from quotewise.clidoc import render, settings_table

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_cli_reference_is_current():
    assert (DOCS / "cli.md").read_text() == render(app), (
        "regenerate: python -m quotewise.clidoc > docs/cli.md"
    )


def test_every_fill_rule_test_named_in_the_docs_exists():
    import re

    text = (DOCS / "fill-rules.md").read_text()
    named = set(re.findall(r"`(test_[a-z0-9_]+)`", text))
    source = "\n".join(p.read_text() for p in (Path(__file__).parent / "sim").glob("test_*.py"))
    defined = set(re.findall(r"^def (test_[a-z0-9_]+)", source, re.M))
    assert named, "fill-rules.md names no tests"
    assert named <= defined, f"docs name missing tests: {sorted(named - defined)}"


def test_the_settings_table_in_the_models_doc_is_current():
    assert settings_table() in (DOCS / "models.md").read_text(), (
        "regenerate the table under 'Parameters': python -m quotewise.clidoc --settings"
    )
