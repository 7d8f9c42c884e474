"""mdsite: a small Markdown-to-HTML site generator that previews itself with execlib.

It is the worked example of embedding ``execlib.Server`` in a build tool: the
build is a Python callable, the sources (``content/`` and ``templates/``) are
the watch paths, and a failing build (say, a jinja2 TemplateSyntaxError) shows
in the page as an overlay until the next good build.

Run:  python examples/mdsite/mdsite.py SRC_DIR OUT_DIR [--port N]
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path

import jinja2
import markupsafe

from execlib import ExeclibError, Server

INLINE = [
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>'),
    (re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"\*(.+?)\*"), r"<em>\1</em>"),
    (re.compile(r"`(.+?)`"), r"<code>\1</code>"),
]


def inline_html(text: str) -> str:
    """Escape ``text`` and turn links, **strong**, *emphasis* and `code` into HTML."""
    text = html.escape(text, quote=False)
    for pattern, replacement in INLINE:
        text = pattern.sub(replacement, text)
    return text


def markdown_to_html(source: str) -> str:
    """A minimal Markdown converter: ``#`` headings and paragraphs of inline text."""
    blocks = []
    for block in re.split(r"\n\s*\n", source.strip()):
        heading = re.match(r"(#{1,6})\s+(.*)", block)
        if heading and "\n" not in block:
            level = len(heading.group(1))
            blocks.append(f"<h{level}>{inline_html(heading.group(2).strip())}</h{level}>")
        elif block.strip():
            blocks.append(f"<p>{inline_html(' '.join(block.split()))}</p>")
    return "\n".join(blocks)


def page_title(source: str, fallback: str) -> str:
    """The text of the first heading, or ``fallback`` when the page has none."""
    match = re.search(r"^#{1,6}\s+(.+)$", source, re.MULTILINE)
    return match.group(1).strip() if match else fallback


def build_site(src: Path, out: Path) -> list[Path]:
    """Render every ``src/content/*.md`` through ``src/templates/page.html`` into ``out/*.html``.

    Errors (a template syntax error, an unreadable file) raise: execlib shows them in the page.
    A fresh jinja2 Environment per build means an edited template is never served from a cache.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(src / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    template = env.get_template("page.html")
    sources = sorted((src / "content").glob("*.md"))
    texts = {path: path.read_text(encoding="utf-8") for path in sources}
    nav = [{"url": path.stem + ".html", "title": page_title(texts[path], path.stem)} for path in sources]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sources:
        rendered = template.render(
            title=page_title(texts[path], path.stem),
            body=markupsafe.Markup(markdown_to_html(texts[path])),
            pages=nav,
            current=path.stem + ".html",
        )
        target = out / (path.stem + ".html")
        target.write_text(rendered, encoding="utf-8")
        written.append(target)
    return written


def make_server(src: str | Path, out: str | Path, host: str = "127.0.0.1", port: int = 8000) -> Server:
    """A Server that serves ``out`` and rebuilds it from ``src`` whenever content or templates change."""
    src, out = Path(src).resolve(), Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return Server(
        out,
        host=host,
        port=port,
        watch=[src / "content", src / "templates"],
        build=lambda: build_site(src, out),
        build_on_start=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: build SRC_DIR into OUT_DIR, serve it, rebuild on change until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Build a Markdown site and preview it with live reload.")
    parser.add_argument("src", help="folder holding content/*.md and templates/page.html")
    parser.add_argument("out", help="folder to write the HTML pages into (and serve)")
    parser.add_argument("--port", type=int, default=8000, help="port to serve on (0 picks a free one)")
    args = parser.parse_args(argv)
    for needed in ("content", "templates"):
        if not (Path(args.src) / needed).is_dir():
            print(f"mdsite: {args.src} has no {needed}/ folder; give the folder holding content/ and templates/")
            return 2
    try:
        server = make_server(args.src, args.out, port=args.port)
        server.pre_serve = lambda s: print(f"mdsite: serving {args.out} at {s.url}", flush=True)
        server.start()  # blocks until Ctrl-C
    except ExeclibError as error:
        print(f"mdsite: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
