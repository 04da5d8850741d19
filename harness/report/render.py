"""A report as a list of sections of blocks, and its two renderings: Markdown and self-contained HTML.

The HTML embeds every image as a base64 data URI and carries its own CSS, so it opens from
a mail attachment or an air-gapped machine with nothing else beside it. The one kind of link it
holds, to files of the run (profile summaries), is relative and works where the report still
sits beside its run folders.
"""
from __future__ import annotations

import base64
import html
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Link:
    """A table cell linking to a file beside the report: `href` is a relative URL (already quoted)."""

    text: str
    href: str


def relative_href(target: Path, base: Path) -> str:
    """The URL of file `target` relative to folder `base` (the report's), quoted for Markdown and HTML.

    Falls back to an absolute file URL where no relative path exists (another drive on Windows).
    """
    try:
        relative = Path(os.path.relpath(target.resolve(), base.resolve())).as_posix()
    except ValueError:
        return target.resolve().as_uri()
    return urllib.parse.quote(relative)


@dataclass(frozen=True)
class Table:
    """A table of already formatted strings (or Links); `caption` says what its numbers are."""

    frame: pd.DataFrame
    caption: str = ""


@dataclass(frozen=True)
class Image:
    """A figure file (PNG) with its title and caption; `vector` is the SVG beside it."""

    title: str
    png: Path
    vector: Path
    caption: str


@dataclass(frozen=True)
class Contents:
    """A table of contents: links to the sections titled `titles` (see `anchor`)."""

    titles: list[str]


Block = Paragraph | Bullets | Table | Image | Contents


def anchor(title: str) -> str:
    """A section's link target, as GitHub makes it from a Markdown heading: lower case, punctuation
    dropped, spaces as hyphens. The HTML page gives its headings the same ids."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    sections: list[Section]


# --------------------------------------------------------------------------- Markdown


def _md_cell(value: object) -> str:
    if isinstance(value, Link):
        return f"[{_md_cell(value.text)}]({value.href})"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame of display strings as a GitHub-flavoured Markdown table."""
    header = "| " + " | ".join(_md_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _md_block(block: Block, base: Path) -> str:
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Table):
        caption = f"{block.caption}\n\n" if block.caption else ""
        return caption + markdown_table(block.frame)
    if isinstance(block, Contents):
        return "\n".join(f"- [{title}](#{anchor(title)})" for title in block.titles)
    png, svg = block.png.relative_to(base).as_posix(), block.vector.relative_to(base).as_posix()
    return f"### {block.title}\n\n![{block.title}]({png})\n\n{block.caption} (Vector version: [{svg}]({svg}).)"


def markdown(doc: Document, base: Path) -> str:
    """The report as Markdown; image links are relative to `base` (the report's folder)."""
    parts = [f"# {doc.title}"]
    for section in doc.sections:
        parts.append(f"## {section.title}")
        parts += [_md_block(block, base) for block in section.blocks]
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.7em; border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { font-size: 1.35em; margin-top: 2em; border-bottom: 1px solid #eee; }
h3 { font-size: 1.1em; }
table { border-collapse: collapse; font-size: .88em; margin: .6em 0 1.4em; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; white-space: nowrap; }
th { background: #f3f3f3; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .caption { font-size: .9em; color: #444; }
"""


def _html_cell(value: object) -> str:
    if isinstance(value, Link):
        return f'<a href="{html.escape(value.href)}">{html.escape(value.text)}</a>'
    return html.escape(str(value))


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_html_cell(v)}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _html_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{html.escape(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        caption = f'<p class="caption">{html.escape(block.caption)}</p>' if block.caption else ""
        return caption + _html_table(block.frame)
    if isinstance(block, Contents):
        return "<ul>" + "".join(f'<li><a href="#{html.escape(anchor(title))}">{html.escape(title)}</a></li>'
                                for title in block.titles) + "</ul>"
    title = html.escape(block.title)
    return (f"<h3>{title}</h3><figure><img src=\"{_data_uri(block.png)}\" alt=\"{title}\">"
            f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")


def html_page(doc: Document) -> str:
    """The report as one HTML page with its images and styles inside it."""
    body = [f"<h1>{html.escape(doc.title)}</h1>"]
    for section in doc.sections:
        body.append(f'<h2 id="{html.escape(anchor(section.title))}">{html.escape(section.title)}</h2>')
        body += [_html_block(block) for block in section.blocks]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(doc.title)}</title>"
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
