"""The grammar of `cloudml local VERB`: parsing, help with examples, mistakes, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_cloudml.commands.grammar import HelpRequested, parse_command, verb_parser
from jupyter_cloudml.commands.local_flags import LOCAL_VERBS, SERVICE_ACTIONS
from jupyter_cloudml.exceptions import InvalidSpec


def test_local_service_actions() -> None:
    ns = parse_command(["local", "service", "install", "--home", "/data/cloudml"])
    assert (ns.verb, ns.local_verb, ns.action, ns.home, ns.output) == (
        "local",
        "service",
        "install",
        "/data/cloudml",
        "text",
    )
    assert parse_command(["local", "service", "status", "-o", "json"]).output == "json"
    assert parse_command(["local", "service", "uninstall"]).home is None


def test_every_option_has_help_with_an_example() -> None:
    for verb in LOCAL_VERBS:
        for action in verb_parser(f"local {verb}", "cloudml")._actions:
            assert action.help, (verb, action.dest)
            if action.nargs != 0 and action.dest != "help":
                assert "e.g." in action.help, (verb, action.dest)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["local"], "missing ACTION"),
        (["local", "service"], "missing ACTION"),
        (["local", "servise"], "unknown command 'servise' (did you mean service?)"),
        (["local", "service", "start"], "ACTION: invalid choice: 'start'"),
        (["local", "service", "install", "--hom", "x"], "unknown option '--hom'"),
        (["local", "service", "install", "--home"], "--home: expected one argument"),
        (["local", "service", "status", "extra"], "unexpected argument 'extra'"),
        (["local", "service", "status", "--", "x"], "takes none"),
    ],
)
def test_bad_input_is_one_clear_message(argv: list[str], message: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_command(argv)
    assert message in str(info.value)


def test_help() -> None:
    with pytest.raises(HelpRequested) as info:
        parse_command(["local", "service", "-h"])
    assert info.value.text.startswith("usage: cloudml local service")
    with pytest.raises(HelpRequested) as info:
        parse_command(["local", "--help"])
    assert "('local VERB')" in info.value.text


TOKENS = st.lists(
    st.sampled_from(
        ["local", "service", *SERVICE_ACTIONS, "--home", "/h", "-o", "json", "yaml", "--", "-"]
    )
    | st.text(max_size=6),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(tokens=TOKENS)
def test_fuzz_local_commands(tokens: list[str]) -> None:
    try:
        ns = parse_command(["local", *tokens])
    except (InvalidSpec, HelpRequested):
        return
    assert ns.verb == "local" and ns.local_verb == "service" and ns.action in SERVICE_ACTIONS
