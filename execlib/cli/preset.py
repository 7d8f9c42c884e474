"""``execlib sphinx`` and ``execlib mkdocs``: a preset (``execlib.presets``) served like ``execlib serve``.

Before anything starts, the preset prints what it amounts to, once: the ``execlib serve`` command
line that does the same, so a user learns what it does and can take it from there.
"""

from __future__ import annotations

import argparse
import logging

from ..config import ServerConfig
from ..log import configure_logging
from ..presets import Preset, mkdocs_preset, sphinx_preset
from .serve import check_host, resolve_host_port, serve_folder

logger = logging.getLogger("execlib.preset")


def make_preset(name: str, args: argparse.Namespace) -> Preset:
    extra = list(args.tool_args)
    if name == "sphinx":
        return sphinx_preset(args.source, args.output, extra)
    return mkdocs_preset(args.project, args.site_dir, extra)


def run_preset(name: str, args: argparse.Namespace) -> int:
    configure_logging(-1 if args.quiet else 1 if args.verbose else 0, args.log_format)
    host, port = resolve_host_port(args.host, args.port)
    preset = make_preset(name, args)
    check_host(host)
    from ..server.warm import WarmCommand

    build = WarmCommand(
        preset.argv,
        preset.entry,
        args=preset.args,
        preload=preset.preload,
        interpreter=preset.interpreter or "",
        cwd=preset.cwd,
        cold=args.cold or preset.interpreter is None,
    )
    logger.info("%s: %s", name, preset.equivalent(args.warnings_as_errors))
    if not build.cold:
        tool = "Sphinx" if name == "sphinx" else "MkDocs"
        logger.info("%s: builds run in a warm process (%s imported once); --cold runs the command as shown", name, tool)
    config = ServerConfig(
        preset.serve,
        host,
        port,
        watch=[*preset.watch, *args.watch],
        ignore=[*preset.ignore, *args.ignore],
        delay=args.delay,
        poll=args.poll,
        build=build,
        build_timeout=args.build_timeout,
        build_on_start=True,
        warnings_as_errors=args.warnings_as_errors,
    )
    return serve_folder(args, config)
