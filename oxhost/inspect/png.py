"""`ox inspect --png`: a picture of the block states, one cell per block -- LUNs as rows
(labelled ch/lun), blocks as columns, a legend. On pblk media the columns are the lines
(line i is block i on every LUN of the target): a strip above the grid gives each line's
state and its sequence number. On AppNVM media each cell carries the stream its unit
headers name (u user, g GC, m metadata).

Sized for the default geometry (32 LUNs x 32 blocks) to stay readable: a fixed cell
size in inches, so the picture grows with the geometry and its size follows from it.
"""
import numpy as np

CELL_IN = 0.3                     # inches per cell
MARGIN_IN = (1.2, 2.6, 1.3, 1.4)  # left, right (legend), bottom, top
DPI = 100

BLOCK_COLOURS = {            # state -> RGB
    "free": (0.90, 0.90, 0.90),
    "open": (0.99, 0.75, 0.18),
    "full": (0.25, 0.47, 0.75),
    "bad": (0.10, 0.10, 0.10),
    "grown_bad": (0.85, 0.15, 0.15),
    "reserved": (0.55, 0.35, 0.70),
}
LINE_COLOURS = {"free": (1.0, 1.0, 1.0), "open": (0.95, 0.50, 0.10), "closed": (0.20, 0.55, 0.35),
                "bad": (0.10, 0.10, 0.10)}
STATE_NAMES = {"free": "free (erased)", "open": "open (partly programmed)", "full": "full",
               "bad": "bad (factory)", "grown_bad": "grown bad", "reserved": "reserved"}
_STREAM = {"user": "u", "gc": "g", "meta": "m"}


def _strip(doc: dict) -> int:
    """Rows above the grid: one for pblk's lines."""
    p = doc.get("pblk")
    return 1 if p is not None and p.get("lines") else 0


def figure_size(doc: dict) -> tuple[int, int]:
    """(width, height) in pixels of the picture of an inspect document."""
    g = doc["geometry"]
    nrows = g["nchannels"] * g["nluns"] + _strip(doc)
    w = MARGIN_IN[0] + MARGIN_IN[1] + CELL_IN * g["nblocks"]
    h = MARGIN_IN[2] + MARGIN_IN[3] + CELL_IN * nrows
    return round(w * DPI), round(h * DPI)


def render_png(doc: dict, path: str) -> dict:
    """Write the picture of an inspect document to `path` (PNG). Returns its layout:
    width, height (pixels), and `cells`, the pixel centre (x, y from the top left) of
    each block's cell, keyed (row, column) = (ch * nluns + lun, blk)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    g = doc["geometry"]
    nrows, ncols = g["nchannels"] * g["nluns"], g["nblocks"]
    names = list(BLOCK_COLOURS)
    grid = np.zeros((nrows, ncols), dtype=np.int64)
    for b in doc["blocks"]:
        grid[b["ch"] * g["nluns"] + b["lun"], b["blk"]] = names.index(b["state"])
    strip = _strip(doc)
    w, h = figure_size(doc)
    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI)
    FigureCanvasAgg(fig)                   # the Agg backend, without pyplot's global state
    ax = fig.add_axes((MARGIN_IN[0] * DPI / w, MARGIN_IN[2] * DPI / h,
                       ncols * CELL_IN * DPI / w, (nrows + strip) * CELL_IN * DPI / h))
    cmap = ListedColormap([BLOCK_COLOURS[n] for n in names])
    # LUN rows 0..nrows-1; row -1 is pblk's line strip
    ax.imshow(grid, cmap=cmap, vmin=0, vmax=len(names) - 1, interpolation="nearest", aspect="auto",
              extent=(-0.5, ncols - 0.5, nrows - 0.5, -0.5))
    ax.set_xlim(-0.5, ncols - 0.5)
    ax.set_ylim(nrows - 0.5, -0.5 - strip)
    ax.set_yticks(range(nrows))
    ax.set_yticklabels([f"{r // g['nluns']}/{r % g['nluns']}" for r in range(nrows)], fontsize=7)
    ax.set_xticks(range(ncols))
    ax.set_xticklabels([str(c) for c in range(ncols)], fontsize=7)
    ax.set_xlabel("block")
    ax.set_ylabel("ch/lun")
    ax.tick_params(length=0)
    ax.set_xticks(np.arange(-0.5, ncols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, nrows, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.6)
    handles = [Patch(facecolor=BLOCK_COLOURS[n], edgecolor="grey", label=STATE_NAMES[n]) for n in names]
    p = doc.get("pblk")
    if strip:
        for ln in p["lines"]:
            ax.add_patch(_rect(ln["id"], -1, LINE_COLOURS.get(ln["state"], (1, 1, 1))))
            if ln["seq"] is not None:
                ax.text(ln["id"], -1, str(ln["seq"]), ha="center", va="center", fontsize=5,
                        color="white" if ln["state"] in ("closed", "bad") else "black")
        ax.text(-0.6, -1, "line", ha="right", va="center", fontsize=7)
        ax.axhline(-0.5, color="black", linewidth=1.2)
        handles.append(Patch(facecolor="none", edgecolor="none",
                             label="pblk lines (top strip,\nsequence numbers):"))
        handles += [Patch(facecolor=c, edgecolor="grey", label=f"line {n}") for n, c in LINE_COLOURS.items()]
        sub = f"pblk volume on LUNs {p['luns'][0]}-{p['luns'][1]}: column i is line i"
    elif doc.get("appnvm") is not None:
        marks: dict = {}                 # (letter, colour) -> cells; one marker artist each
        for b in doc["blocks"]:
            c = _STREAM.get(b.get("stream"))
            if c and b["state"] not in ("bad", "grown_bad"):
                key = (c, "white" if b["state"] == "full" else "black")
                marks.setdefault(key, []).append((b["blk"], b["ch"] * g["nluns"] + b["lun"]))
        for (letter, colour), xy in sorted(marks.items()):
            x, y = zip(*xy)
            ax.scatter(x, y, marker=f"$\\mathrm{{{letter}}}$", s=22, c=colour, linewidths=0)
        handles.append(Patch(facecolor="none", edgecolor="none",
                             label="AppNVM stream (OOB):\nu user, g GC, m metadata"))
        sub = "AppNVM volume (device-side FTL)"
    else:
        sub = doc["label"]["holds"]
    fig.legend(handles=handles, loc="upper right", fontsize=7, frameon=False,
               bbox_to_anchor=(1 - 0.1 * DPI / w, 1 - MARGIN_IN[3] * DPI / h))
    fig.suptitle(f"{doc['disk']}\n{sub} -- {g['describe']}", fontsize=9)
    fig.savefig(path, format="png", dpi=DPI)
    to_px = ax.transData.transform
    cells = {}
    for r in range(nrows):
        for c in range(ncols):
            x, y = to_px((c, r))
            cells[(r, c)] = (float(x), float(h - y))
    return {"width": w, "height": h, "cells": cells, "colours": dict(BLOCK_COLOURS)}


def _rect(x: int, y: int, colour):
    from matplotlib.patches import Rectangle
    return Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=colour, edgecolor="white", linewidth=0.6)
