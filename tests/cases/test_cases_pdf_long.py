"""A value too long for one page (hundreds of accounts) still renders, across pages."""

from __future__ import annotations

import io

from pypdf import PdfReader

from rempart.cases.documents import Block
from rempart.cases.pdf import render_pdf


def test_a_kv_value_longer_than_a_page_flows_over_several_pages():
    accounts = ", ".join(f"PH{i:04d}" for i in range(3000))
    blocks = [
        Block("title", "Projet de notification"),
        Block("kv", [("Comptes concernés", accounts), ("Nombre", "3000")]),
    ]
    reader = PdfReader(io.BytesIO(render_pdf(blocks, title="t")))
    text = "".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) >= 2
    assert "PH0000" in text and "PH2999" in text and "3000" in text
