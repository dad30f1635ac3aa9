"""Every command and option of `mathgpt` says what it is for."""

import argparse

from mathgpt.cli import build_parser
from mathgpt.methods import method_names


def _parsers(parser, path=("mathgpt",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + (name,))


def test_every_option_and_argument_has_help_text():
    missing = [f"{' '.join(path)} {a.dest}" for path, p in _parsers(build_parser()) for a in p._actions
               if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help]
    assert not missing, missing


def test_synthesize_help_names_the_methods():
    sub = dict(_parsers(build_parser()))[("mathgpt", "synthesize")]
    text = sub.format_help()
    assert all(m in text for m in method_names())
