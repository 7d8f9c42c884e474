"""PathRouter: wcmatch globs against names relative to the route's folder, ignores, .gitignore, rebasing."""

from __future__ import annotations

from concurrent.futures import wait
from pathlib import Path

import pytest

from execlib import Action, ConfigError, FileEvent, PathRouter


def fe(root: Path | str, name: str, action: Action = Action.MODIFIED, is_dir: bool = False) -> FileEvent:
    return FileEvent(str(root), name, action, is_dir)


@pytest.fixture
def router():
    r = PathRouter()
    yield r
    r.close(2)


def matched(router: PathRouter, event: FileEvent) -> list[FileEvent]:
    return [m for route in router.routes if (m := router.match(route, event)) is not None]


def test_globstar_extglob_brace_and_negation(router: PathRouter, tmp_path: Path) -> None:
    router.register(tmp_path, print, glob=["**/*.@(html|css)", "!**/vendor/**"])
    assert matched(router, fe(tmp_path, "index.html"))
    assert matched(router, fe(tmp_path, "a/b/c/site.css"))
    assert not matched(router, fe(tmp_path, "a/b/app.js"))
    assert not matched(router, fe(tmp_path, "vendor/lib.css"))
    router.routes.clear()
    router.register(tmp_path, print, glob="{docs,src}/*.md")
    assert matched(router, fe(tmp_path, "docs/a.md"))
    assert not matched(router, fe(tmp_path, "docs/deep/a.md"))
    assert not matched(router, fe(tmp_path, "other/a.md"))


def test_only_exclusions_means_everything_else(router: PathRouter, tmp_path: Path) -> None:
    router.register(tmp_path, print, glob="!**/*.log")
    assert matched(router, fe(tmp_path, "a.txt"))
    assert not matched(router, fe(tmp_path, "x/a.log"))


def test_default_ignores_apply_to_every_route(router: PathRouter, tmp_path: Path) -> None:
    router.register(tmp_path, print)
    ignored = [
        ".git/HEAD",
        "sub/.git/index",
        ".hg/store",
        "pkg/__pycache__/m.pyc",
        "node_modules/x/index.js",
        ".venv/bin/python",
        ".index.html.swp",
        "a/b.swx",
        "page.html~",
        ".#page.html",
        "4913",
        "sub/4913",
        "build.tmp",
        ".DS_Store",
    ]
    for name in ignored:
        assert not matched(router, fe(tmp_path, name)), name
    for name in ("index.html", ".eslintrc", "git/file", "src/node.js", "49134"):
        assert matched(router, fe(tmp_path, name)), name


def test_user_ignores_add_to_the_defaults(router: PathRouter, tmp_path: Path) -> None:
    router.register(tmp_path, print, ignore=["build/", "*.map", "/top.txt"])
    assert not matched(router, fe(tmp_path, "build/out.js"))
    assert not matched(router, fe(tmp_path, "x/build/out.js"))
    assert not matched(router, fe(tmp_path, "app.js.map"))
    assert not matched(router, fe(tmp_path, "top.txt"))
    assert matched(router, fe(tmp_path, "deep/top.txt"))
    assert not matched(router, fe(tmp_path, ".git/config")), "defaults still apply"


def test_gitignore_is_honoured_when_asked(router: PathRouter, tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("dist/\n*.log\n!keep.log\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".gitignore").write_text("local.txt\n")
    router.register(tmp_path, print, gitignore=True)
    assert not matched(router, fe(tmp_path, "dist/app.js"))
    assert not matched(router, fe(tmp_path, "dist", is_dir=True))
    assert not matched(router, fe(tmp_path, "x/debug.log"))
    assert matched(router, fe(tmp_path, "keep.log"))
    assert not matched(router, fe(tmp_path, "sub/local.txt"))
    assert matched(router, fe(tmp_path, "local.txt"))
    plain = PathRouter()
    plain.register(tmp_path, print)
    assert matched(plain, fe(tmp_path, "dist/app.js")), "without gitignore=True, .gitignore is not read"


def test_events_from_an_outer_root_are_rebased_on_the_route_folder(router: PathRouter, tmp_path: Path) -> None:
    (tmp_path / "src" / "css").mkdir(parents=True)
    router.register(tmp_path / "src", print, glob="css/*.css")
    (event,) = matched(router, fe(tmp_path, "src/css/a.css"))
    assert event.endpoint == str(tmp_path / "src") and event.name == "css/a.css"
    assert event.path == str(tmp_path / "src" / "css" / "a.css")
    assert not matched(router, fe(tmp_path, "srcx/css/a.css"))


def test_a_single_file_path_watches_that_name_only(router: PathRouter, tmp_path: Path) -> None:
    target = tmp_path / "conf[1].toml"
    target.write_text("x")
    route = router.register(target, print)
    assert route.endpoint == str(tmp_path)
    assert matched(router, fe(tmp_path, "conf[1].toml"))
    assert not matched(router, fe(tmp_path, "other.toml"))


def test_missing_path_is_a_config_error(router: PathRouter, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="path not found"):
        router.register(tmp_path / "nope", print)


def test_should_watch_dir_skips_folders_every_route_ignores(router: PathRouter, tmp_path: Path) -> None:
    router.register(tmp_path, print, ignore=["dist/"])
    assert router.should_watch_dir(str(tmp_path))
    assert router.should_watch_dir(str(tmp_path / "src"))
    assert not router.should_watch_dir(str(tmp_path / "node_modules"))
    assert not router.should_watch_dir(str(tmp_path / "dist"))
    router.register(tmp_path / "dist" if (tmp_path / "dist").mkdir() is None else tmp_path, print)
    assert router.should_watch_dir(str(tmp_path / "dist")), "another route wants it"


def test_submit_runs_matching_routes_only(router: PathRouter, tmp_path: Path) -> None:
    css: list[FileEvent] = []
    html: list[FileEvent] = []
    router.register(tmp_path, css.append, glob="**/*.css", debounce=0, delay=0)
    router.register(tmp_path, html.append, glob="**/*.html", debounce=0, delay=0, actions=[Action.CREATED])
    wait(router.submit([fe(tmp_path, "a.css"), fe(tmp_path, "b.html"), fe(tmp_path, "c.html", Action.CREATED)]), 5)
    assert [e.name for e in css] == ["a.css"]
    assert [e.name for e in html] == ["c.html"]


@pytest.mark.parametrize(
    ("pattern", "opener"),
    [("[abc", "'['"), ("*.@(html|css", "'@('"), ("{docs,src/*.md", "'{'"), ("src/[a-z*.md", "'['")],
)
def test_an_unclosed_bracket_brace_or_group_is_a_config_error_naming_the_pattern(
    router: PathRouter, tmp_path: Path, pattern: str, opener: str
) -> None:
    # wcmatch would take each literally: the route would quietly match nothing
    with pytest.raises(ConfigError) as glob_error:
        router.register(tmp_path, print, glob=["**/*.md", pattern])
    assert str(glob_error.value).startswith(f"glob={pattern!r} is not a valid glob"), glob_error.value
    assert f"has a {opener}" in str(glob_error.value)
    with pytest.raises(ConfigError, match=r"^ignore="):
        router.register(tmp_path, print, ignore=pattern)
    assert router.routes == []


def test_literal_brackets_written_as_such_still_work(router: PathRouter, tmp_path: Path) -> None:
    router.register(tmp_path, print, glob=["\\[draft\\]*.md", "[[]old]*.md", "[]x]*.txt", "*.[[:alpha:]]s"])
    for name in ("[draft] a.md", "[old] b.md", "]x.txt", "app.js"):
        assert matched(router, fe(tmp_path, name)), name
    assert not matched(router, fe(tmp_path, "d a.md"))


def test_ignore_given_as_one_string_is_one_pattern(router: PathRouter, tmp_path: Path) -> None:
    # read letter by letter, "*.log" ignored everything ("*" was one of its "patterns")
    router.register(tmp_path, print, ignore="*.log")
    assert matched(router, fe(tmp_path, "a.txt"))
    assert not matched(router, fe(tmp_path, "debug.log"))


def test_a_misspelt_option_is_a_type_error_not_a_route_for_everything(router: PathRouter, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="globs"):
        router.register(tmp_path, print, globs="**/*.md")
    assert router.routes == []
    with pytest.raises(ConfigError, match=r"^glob=5 must be a glob string"):
        router.register(tmp_path, print, glob=5)
