"""The Python API is strict: unknown keywords are TypeErrors, wrong values ConfigErrors naming the parameter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import execlib
from execlib import ConfigError, Server


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    site, src = tmp_path / "site", tmp_path / "src"
    site.mkdir()
    src.mkdir()
    return {"site": site, "src": src}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"port": "8000"}, "port='8000' must be an int from 0 to 65535"),
        ({"port": True}, "port=True must be an int"),
        ({"port": 70000}, "port=70000 is out of range"),
        ({"host": ""}, "host='' must be a host name or an address"),
        ({"host": 8000}, "host=8000 must be a host name"),
        ({"delay": -5}, "delay=-5 must be a number of milliseconds, 0 or more"),
        ({"delay": "20"}, "delay='20' must be a number"),
        ({"graceful_timeout": float("nan")}, "graceful_timeout=nan must be a number of seconds"),
        ({"livereload": "no"}, "livereload='no' must be True or False"),
        ({"watch": 3}, "watch=3 must be a path or a list of paths"),
        ({"watch": ["missing"]}, "watch='missing' does not exist"),
        ({"ignore": ["*.tmp", "[abc"]}, "ignore='[abc' is not a valid glob"),
        ({"ignore": "@(a|b"}, "ignore='@(a|b' is not a valid glob"),
        ({"build": ""}, "build='' must be a shell command or a callable"),
        ({"build": "make"}, "build='make' needs watch= paths"),
        (
            {"build": "make", "watch": ["SRC"], "build_timeout": 0},
            "build_timeout=0 must be a number of seconds more than 0",
        ),
        ({"build": "make", "watch": ["SRC"], "build_timeout": -1}, "build_timeout=-1 must be"),
        ({"pre_serve": "announce"}, "pre_serve='announce' must be a callable"),
        ({"loop": object()}, "loop=<object object at"),
        ({"managed_listeners": [object()]}, "managed_listeners=<object object at"),
        ({"fallback": 404}, "fallback=404 must be the path of a file"),
    ],
)
def test_bad_arguments_are_config_errors_naming_the_parameter(
    folders: dict[str, Path], arguments: dict[str, Any], message: str
) -> None:
    arguments = {k: [str(folders["src"])] if v == ["SRC"] else v for k, v in arguments.items()}
    with pytest.raises(ConfigError) as error:
        Server(folders["site"], **arguments)
    text = str(error.value)
    assert text.startswith(message), text
    assert "--" not in text, "the Python API speaks of parameters, not command-line flags"
    assert "\n" not in text
    assert error.value.option in arguments


def test_an_unknown_keyword_is_a_type_error(folders: dict[str, Path]) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'wacth'"):
        Server(folders["site"], wacth=[folders["src"]])  # type: ignore[call-arg]


def test_good_arguments_are_kept(folders: dict[str, Path]) -> None:
    # one path (a str or a Path) is one watch path, not a list of letters; one glob is one glob
    server = Server(folders["site"], port=0, watch=str(folders["src"]), ignore="*.tmp", delay=0.5, build_timeout=None)
    assert server.watch == [str(folders["src"])] and server.ignore == ("*.tmp",)
    generated = (p for p in [folders["src"]])  # any iterable, read once
    server = Server(folders["site"], port=0, watch=generated, build="make", build_timeout=2.5)
    assert server.watch == [str(folders["src"])]


def test_the_command_line_names_flags_for_the_same_errors(folders: dict[str, Path]) -> None:
    from execlib.cli import build_parser, error_message
    from execlib.cli.serve import config_from_args

    args = build_parser().parse_args(["serve", str(folders["site"]), "--build", "make", "--no-config"])
    with pytest.raises(ConfigError) as error:
        config_from_args(args)
    assert str(error.value) == "build='make' needs watch= paths: the sources it rebuilds from"
    assert error_message(error.value, args) == "--build make needs --watch paths: the sources it rebuilds from"


def test_configure_logging_is_exported_lazily() -> None:
    assert "configure_logging" in execlib.__all__ and "configure_logging" in dir(execlib)
    from execlib.log import configure_logging

    assert execlib.configure_logging is configure_logging  # what ``execlib serve`` calls
