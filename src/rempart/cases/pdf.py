"""PDF rendering of breach documents with fpdf2 and an embedded Unicode font (DejaVu Sans,
shipped in ``rempart/cases/fonts`` under its own permissive licence, see LICENSE.md there)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from rempart.cases.documents import Block
from rempart.errors import InputError

FONT = "DejaVu"


def _font_path(name: str) -> str:
    return str(resources.files("rempart.cases").joinpath("fonts", name))


class _Doc(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, size=8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 8, f"{self.footer_text} - page {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0, 0, 0)


#: Characters beyond which a key/value pair is set as a paragraph rather than a table row.
LONG_VALUE = 1200


def _kv_table(pdf: FPDF, pairs: list[tuple[str, str]]) -> None:
    if not pairs:
        return
    pdf.set_font(FONT, "", 9)
    with pdf.table(
        col_widths=(38, 62), text_align="LEFT", line_height=4.8, first_row_as_headings=False
    ) as table:
        for key, value in pairs:
            row = table.row()
            pdf.set_font(FONT, "B", 9)
            row.cell(key)
            pdf.set_font(FONT, "", 9)
            row.cell(value)


def render_pdf(blocks: Sequence[Block], *, title: str, footer: str = "") -> bytes:
    pdf = _Doc(format="A4")
    pdf.footer_text = footer
    pdf.set_title(title)
    pdf.set_author("Rempart")
    pdf.set_creator("Rempart (fpdf2)")
    pdf.add_font(FONT, "", _font_path("DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", _font_path("DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.set_margins(18, 16, 18)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    for b in blocks:
        if b.kind == "title":
            pdf.set_font(FONT, "B", 15)
            pdf.multi_cell(width, 7, str(b.content), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(3)
        elif b.kind == "h2":
            pdf.ln(2)
            pdf.set_font(FONT, "B", 11.5)
            pdf.set_fill_color(232, 238, 247)
            pdf.multi_cell(
                width, 6.5, str(b.content), fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
            pdf.ln(1.5)
        elif b.kind == "p":
            pdf.set_font(FONT, "", 9.5)
            pdf.multi_cell(width, 5, str(b.content), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(1.5)
        elif b.kind == "ul":
            pdf.set_font(FONT, "", 9.5)
            for item in b.content:
                pdf.set_x(pdf.l_margin + 4)
                pdf.multi_cell(
                    width - 4, 5, f"• {item}", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
                )
            pdf.ln(1.5)
        elif b.kind == "kv":
            # Short pairs go in a two-column table; a value too long for one page (a list of
            # hundreds of accounts...) flows as a paragraph under its key instead, since a table
            # row cannot break across pages.
            pairs = [(str(k), str(v)) for k, v in b.content]
            run: list[tuple[str, str]] = []
            for key, value in pairs:
                if len(value) <= LONG_VALUE:
                    run.append((key, value))
                    continue
                _kv_table(pdf, run)
                run = []
                pdf.set_font(FONT, "B", 9)
                pdf.multi_cell(width, 4.8, key, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                pdf.set_font(FONT, "", 9)
                pdf.multi_cell(width, 4.8, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                pdf.ln(1)
            _kv_table(pdf, run)
            pdf.ln(2)
    return bytes(pdf.output())


def write_pdf(path: Path, blocks: Sequence[Block], *, title: str, footer: str = "") -> None:
    data = render_pdf(blocks, title=title, footer=footer)
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise InputError(f"cannot write the PDF: {exc.strerror}", where=str(path)) from None
