"""watchfiles backend specifics: forcing the backend, polling mode, a deleted root coming back."""

from __future__ import annotations

from pathlib import Path

import pytest

from execlib import Action, ConfigError, PathRouter, WatchfilesListener
from tests.listener_support import Recorder


def test_backend_can_be_forced_and_bad_names_are_config_errors(tmp_path: Path) -> None:
    router = PathRouter()
    router.register(tmp_path, print)
    assert isinstance(router.get_listener(backend="watchfiles"), WatchfilesListener)
    with pytest.raises(ConfigError, match="unknown listener backend"):
        router.get_listener(backend="kqueue")
    with pytest.raises(ConfigError, match="polling"):
        router.get_listener(backend="inotify", poll=True)


def test_polling_mode_sees_changes(tmp_path: Path) -> None:
    rec = Recorder()
    router = PathRouter()
    router.register(tmp_path, rec, debounce=0, delay=0, batch=True)
    listener = router.get_listener(backend="watchfiles", poll=True, poll_delay_ms=50)
    assert isinstance(listener, WatchfilesListener) and listener.poll
    with listener:
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "p.txt").write_text("x")
        rec.wait_for("sub/p.txt", Action.CREATED)
        (tmp_path / "sub" / "p.txt").unlink()
        rec.wait_for("sub/p.txt", Action.DELETED)
