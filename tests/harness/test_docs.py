"""docs/optimizers.md is the registry's own output (regenerate with `optbench optimizers --markdown`)."""

from pathlib import Path

from optbench.cli.info_cmd import zoo_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "optimizers.md"


def test_optimizer_doc_is_up_to_date():
    assert DOC.read_text() == zoo_markdown(), "run: optbench optimizers --markdown > docs/optimizers.md"
