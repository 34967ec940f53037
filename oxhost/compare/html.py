"""report.html: the report people share -- the same text as report.md, one file, every
figure inline (PNG data URIs), so it reads the same mailed, attached or opened without
the PNG files beside it. No scripts and nothing fetched: it opens offline in any browser.

The markdown is the subset report.md is written in (headings, paragraphs, lists, pipe
tables, images on their own line, fenced code, `code`, **bold**, [links](...)); each
table gets the id of the section it sits in (`headline-figures` for the headline table).
"""
from __future__ import annotations

import base64
import html as _html
import re
from pathlib import Path

CSS = """
body { font: 15px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1b1b1b;
       max-width: 1180px; margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.7em; border-bottom: 2px solid #ccc; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.1em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: 13px; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; }
td:first-child, th:first-child, td:nth-child(2) { text-align: left; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 13px; color: #333; margin-top: .3em; }
code { background: #f4f4f4; padding: 0 3px; border-radius: 3px; }
pre { background: #f7f7f7; padding: .7em; overflow-x: auto; font-size: 12.5px; }
@media print { body { max-width: none; } h2 { page-break-after: avoid; } figure { page-break-inside: avoid; } }
"""

_IMG = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)\s*$")
_TABLE_SEP = re.compile(r"^\|\s*:?-+")


def _inline(text: str) -> str:
    """Escaped text with `code`, **bold** and [links](url)."""
    out, pos = [], 0
    for m in re.finditer(r"`([^`]+)`", text):
        out.append(_spans(text[pos:m.start()]))
        out.append(f"<code>{_html.escape(m.group(1))}</code>")
        pos = m.end()
    out.append(_spans(text[pos:]))
    return "".join(out)


def _spans(text: str) -> str:
    t = _html.escape(text, quote=False)
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", lambda m: f'<a href="{_html.escape(m.group(2))}">{m.group(1)}</a>', t)


def slug(heading: str) -> str:
    h = re.sub(r"[^\w\- ]", "", re.sub(r"`", "", heading.strip()).lower())
    return re.sub(r"\s+", "-", h).strip("-")


def _image(src: str, alt: str, base: Path) -> str:
    path = base / src
    if path.suffix.lower() != ".png" or not path.is_file():
        return f"<p><em>(figure {_html.escape(src)} was not drawn)</em></p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_html.escape(alt)}">'


def render(md: str, base: Path, title: str) -> str:
    """The HTML page of a report.md text; images are read from `base` and inlined."""
    lines = md.split("\n")
    body: list[str] = []
    ids: dict[str, int] = {}
    section = "report"
    i = 0

    def table_id() -> str:
        n = ids.get(section, 0)
        ids[section] = n + 1
        return section if n == 0 else f"{section}-{n + 1}"

    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            body.append("<pre>" + _html.escape("\n".join(lines[i + 1:j])) + "</pre>")
            i = j + 1
            continue
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            level, text = len(m.group(1)), m.group(2)
            sid = slug(text)
            if level >= 2:
                section = sid
            body.append(f'<h{level} id="{sid}">{_inline(text)}</h{level}>')
            i += 1
            continue
        m = _IMG.match(line)
        if m:
            cap = []
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines) and lines[j].strip() and not (lines[j].startswith(("#", "|", "- ", "!", "```"))):
                cap = [lines[j]]
                i = j
            body.append("<figure>" + _image(m.group(2), m.group(1), base)
                        + (f"<figcaption>{_inline(cap[0])}</figcaption>" if cap else "") + "</figure>")
            i += 1
            continue
        if line.startswith("|") and i + 1 < len(lines) and _TABLE_SEP.match(lines[i + 1]):
            head = [c.strip() for c in line.strip().strip("|").split("|")]
            rows = []
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append([c.strip() for c in lines[j].strip().strip("|").split("|")])
                j += 1
            body.append(f'<table id="{table_id()}"><thead><tr>' + "".join(f"<th>{_inline(c)}</th>" for c in head)
                        + "</tr></thead><tbody>" + "".join(
                            "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rows)
                        + "</tbody></table>")
            i = j
            continue
        if line.startswith("- "):
            items: list[tuple[str, list[str]]] = []
            while i < len(lines) and (lines[i].startswith("- ") or lines[i].startswith("  - ")):
                if lines[i].startswith("- "):
                    items.append((lines[i][2:], []))
                elif items:
                    items[-1][1].append(lines[i][4:])
                i += 1
            body.append("<ul>" + "".join(
                f"<li>{_inline(t)}" + ("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in sub) + "</ul>" if sub else "")
                + "</li>" for t, sub in items) + "</ul>")
            continue
        para = []
        while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|", "- ", "```")) \
                and not _IMG.match(lines[i]):
            para.append(lines[i])
            i += 1
        body.append("<p>" + _inline(" ".join(para)) + "</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def write(md: str, outdir, title: str) -> Path:
    """report.html beside report.md in `outdir`, its figures read from there."""
    outdir = Path(outdir)
    path = outdir / "report.html"
    path.write_text(render(md, outdir, title), encoding="utf-8")
    return path


__all__ = ["render", "slug", "write"]
