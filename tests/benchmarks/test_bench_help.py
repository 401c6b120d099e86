"""``--help`` of the benchmark runners explains every option and its default (issue 20.8)."""

from __future__ import annotations

import argparse

import pytest

from benchmarks import run_fr


class _Parsed(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__()
        self.parser = parser


def _parser_of(main, monkeypatch) -> argparse.ArgumentParser:
    """The parser ``main`` builds, caught when it parses (nothing runs)."""
    def capture(self, *args, **kwargs):
        raise _Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", capture)
    with pytest.raises(_Parsed) as caught:
        main([])
    return caught.value.parser


def test_run_fr_help_has_text_and_default_for_every_option(monkeypatch) -> None:
    parser = _parser_of(run_fr.main, monkeypatch)
    options = [action for action in parser._actions if action.option_strings and action.dest != "help"]
    assert {"--metrics", "--out", "--device", "--layout"} <= {s for a in options for s in a.option_strings}
    for action in options:
        assert action.help, action.option_strings
        if not isinstance(action, argparse._StoreTrueAction) and action.dest != "debug":
            assert "default" in action.help or action.required, action.option_strings
    text = parser.format_help()
    assert "(default: benchmarks/results)" in text and "(default: cpu)" in text and "(default: auto)" in text
    assert "pe_alex pe_vgg lpips" in text  # the default metrics, spelled out
