"""AppMode: app mode's parts put together for a Server, and what they tell the pages and the terminal.

The Server forwards what its files do not answer to ``front`` (as proxy mode does to its
backend), starts the first generation once it serves (``start``), sends the app's Python file
changes to ``files_changed`` (its reload listener's route for them) and stops everything with
``aclose``. Pages reload once a new generation is live and the old one drained; a problem (an
import error, a failing startup, workers that keep dying) is shown in every page, and a later
generation that works clears it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import AppError
from ..listener import top_roots
from ..server.watching import shown_names, shown_path, site_relative
from .front import AppFront
from .supervisor import AppProblem, Generation, Supervisor
from .target import AppTarget

if TYPE_CHECKING:
    from ..config import ServerConfig
    from ..server.livereload import ReloadHub

logger = logging.getLogger("execlib.app")

# Folders under the app's folder whose Python files are not the app's code (besides the
# listener's own ignores: .venv/, __pycache__/, node_modules/, .git/).
NOT_APP_CODE = ("site-packages/", "venv/", "env/", ".tox/", ".nox/", "build/", "dist/", ".eggs/")
# A save of several files (a refactoring, a checkout) is one restart.
APP_DEBOUNCE_MS = 20


class AppMode:
    def __init__(
        self, config: ServerConfig, hub: ReloadHub | None, *, on_fatal: Callable[[BaseException], None]
    ) -> None:
        assert isinstance(config.app, str) and config.app_dir is not None  # ServerConfig made them so
        self.target = AppTarget(
            config.app, os.fspath(config.app_dir), factory=config.factory, interface=config.interface
        )
        self.reload = bool(config.reload)
        #: the folders whose Python files are the app's code (watched with reload): its own, and the
        #: reload folders (editable packages beside it), none inside another
        code_dirs = tuple(os.fspath(folder) for folder in config.reload_dirs)  # absolute, once checked
        self.folders = tuple(top_roots([self.target.app_dir, *code_dirs]))
        self.hub = hub
        self.on_fatal = on_fatal
        self.supervisor = Supervisor(
            self.target,
            workers=config.workers,
            startup_timeout=config.app_startup_timeout,
            drain_timeout=config.graceful_timeout,
            on_live=self._live,
            on_problem=self._problem,
            standby=self.reload,  # the next generation's workers wait ready to go (no reload: no next one)
            code_dirs=code_dirs,
        )
        if config.static and site_relative(os.fspath(config.root), self.target.app_dir) is not None:
            # what the user asked for, but rarely what they meant: the source goes to any browser
            logger.warning(
                "ROOT %s holds the app's folder %s: its Python files are served as files; "
                "serve a folder of static files as ROOT, or none",
                os.fspath(config.root),
                self.target.app_dir,
            )
        # a request waits for a starting generation as long as it may take, and a little more
        self.front = AppFront(self.supervisor, inject=hub is not None, hold_timeout=config.app_startup_timeout + 5)

    async def start(self) -> None:
        """Start the first generation. A problem with the command (no such module) ends serving;
        with reload on, the app's own errors are shown in the pages until a change fixes them."""
        problem = await self.supervisor.start()
        if problem is not None and problem.target_error and self.reload:  # without reload: _problem said it
            self.on_fatal(AppError(problem.title, target_error=True))

    async def files_changed(self, events: list[Any]) -> None:
        names = sorted(self._shown(getattr(e, "path", str(e))) for e in events)
        logger.info("%s changed; restarting the app", shown_names(names))
        self.supervisor.restart_workers()

    def _shown(self, path: str) -> str:
        """A changed file as the change line names it: under the app's folder, from there."""
        inside = site_relative(self.target.app_dir, path)
        return inside if inside is not None else shown_path(path)

    async def aclose(self) -> None:
        await self.supervisor.shutdown()
        await self.front.aclose()

    async def _live(self, generation: Generation, after_problem: bool, previous: Generation | None) -> None:
        if previous is not None:
            # the requests the old workers were answering have finished (their processes stop in
            # the background): pages reload now, onto the new code only
            await self.front.wait_idle(previous, self.supervisor.drain_timeout)
        await self.front.keep_only(generation.number)
        if self.hub is None:
            return
        if after_problem:
            await self.hub.clear_error()
            logger.info("the app runs again")
        if generation.number > 1 or after_problem:
            await self.hub.reload_all()

    async def _problem(self, problem: AppProblem) -> None:
        await self.front.keep_only(None)
        if self.hub is not None:
            await self.hub.show_error(problem.title, problem.text)
        if not self.reload:
            self.on_fatal(AppError(problem.title, target_error=problem.target_error))
