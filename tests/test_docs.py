"""The README's configuration reference is the generated one, so documentation cannot drift."""

from __future__ import annotations

from pathlib import Path

from talkd.config import option_specs, reference_markdown

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_configuration_reference_is_current() -> None:
    text = README.read_text()
    begin = text.index("<!-- reference:begin")
    begin = text.index("\n", begin) + 1
    end = text.index("<!-- reference:end -->")
    assert text[begin:end].strip() == reference_markdown().strip(), "run `talkd config reference` and update README"


def test_every_environment_variable_is_documented() -> None:
    text = README.read_text()
    missing = [spec.env for spec in option_specs() if spec.env not in text]
    assert missing == []
