"""The report's tables as HTML tables: rows of text need no chart. A plotly table drew every cell as SVG (a
1,000-trial report spent about half of its opening time drawing its six tables) and scrolled inside a fixed
height; an HTML table draws at once, grows with its rows, and its text selects, copies and prints as text."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

HEADER_FILL = "#dde4ee"
# the few tags the cell texts carry (plotly's text markup, kept for the console too); everything else is escaped
_KEPT_TAGS = re.compile(r"&lt;(br|b|/b)&gt;")

STYLE = """
div.table p.title { font-size: 1.05rem; margin: 0.4rem 0; }
table.data { border-collapse: collapse; font-size: 12px; width: 100%; }
table.data th, table.data td { text-align: left; vertical-align: top; padding: 4px 6px; border: 1px solid #cfd6df; }
table.data th { background: """ + HEADER_FILL + """; }
"""


@dataclass
class Table:
    header: Sequence[str]
    columns: Sequence[Sequence]  # one sequence of cell values per header entry
    title: str
    fill: Sequence[Sequence[str]] | None = None  # a background color per cell, column by column

    @property
    def rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def to_html(self, div_id: str) -> str:
        head = "".join(f"<th>{_cell(text)}</th>" for text in self.header)
        body = []
        for row in range(self.rows):
            cells = []
            for column, values in enumerate(self.columns):
                color = self.fill[column][row] if self.fill is not None else "white"
                style = f' style="background:{html.escape(color)}"' if color != "white" else ""
                cells.append(f"<td{style}>{_cell(values[row])}</td>")
            body.append(f"<tr>{''.join(cells)}</tr>")
        return (f'<div id="{html.escape(div_id)}" class="table"><p class="title">{_cell(self.title)}</p>'
                f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def _cell(value) -> str:
    return _KEPT_TAGS.sub(r"<\1>", html.escape(str(value)))
