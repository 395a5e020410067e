"""A generated block in a hand-written document: the text between two marker lines, rewritten
from data while the rest of the document stays as its authors wrote it."""

from __future__ import annotations


def replace_block(document: str, begin: str, end: str, body: str, *, where: str) -> str:
    """``document`` with the text between ``begin`` and ``end`` replaced by ``body``."""
    if begin not in document or end not in document:
        raise ValueError(f"{where}: no generated block; fix: put the lines\n{begin}\n{end}\n"
                         "where the table belongs")
    head, rest = document.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"
