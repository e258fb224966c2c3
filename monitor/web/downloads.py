"""The landscape's downloads: CSV and XLSX of every study in the view, with the columns
analysts compare. Cells that a spreadsheet would run as formulas are written as text.

XLSX is written by openpyxl in write-only mode (rows streamed into the file, not held as
a sheet of cell objects): the format people who live in spreadsheets open directly, with
numbers as numbers and dates as the registry wrote them.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from monitor.core.describe import phases_label, status_label

# (key in a landscape row, column heading)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("nct_id", "NCT id"),
    ("title", "Title"),
    ("status", "Status"),
    ("registry_status", "Status in the registry's words"),
    ("phases", "Phase"),
    ("modality", "Modality"),
    ("targets", "Targets"),
    ("cell_source", "Cell source"),
    ("products", "Products"),
    ("indications", "Indications"),
    ("enrollment", "Enrollment"),
    ("start", "Start"),
    ("primary_completion", "Primary completion"),
    ("first_posted", "First posted"),
    ("sites", "Sites"),
    ("countries", "Countries"),
    ("sponsor", "Lead sponsor"),
    ("in_scope", "In scope"),
    ("scope_reason", "Scope reason"),
    ("last_update_post_date", "Last update posted"),
    ("also_registered", "Also registered as"),
)
CSV_KEYS = [k for k, _ in COLUMNS]


_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as the start of a formula


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection: = + - @ tab CR)."""
    if value and value[0] in _FORMULA:
        return "'" + value
    return value


def _also(row: dict[str, Any]) -> list[str]:
    """The other registrations of a row, as a reader writes them ("EU CTIS 2024-510663-34-00")."""
    return [f"{r['registry_name']} {r['id']}" for r in (row.get("registrations") or [])[1:]]


def _value(row: dict[str, Any], key: str) -> Any:
    return _also(row) if key == "also_registered" else row.get(key)


def _cell(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key == "status":
        return status_label(value)
    if key == "phases":
        return phases_label(value)
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    if isinstance(value, (bool, int)):
        return value
    return spreadsheet_safe(str(value))


def _csv_line(r: dict[str, Any]) -> list[str]:
    return [
        spreadsheet_safe("; ".join(v) if isinstance(v, list) else "" if v is None else str(v))
        for v in (_value(r, k) for k in CSV_KEYS)
    ]


def csv_chunks(batches: Iterable[Iterable[dict[str, Any]]]) -> Iterator[str]:
    """CSV with the registry's codes kept where they are codes (RECRUITING, PHASE2): what
    scripts read; the XLSX speaks as the page does. One piece per batch of rows, so a
    download of 100,000 studies is written as the database gives them."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_KEYS)
    yield buf.getvalue()  # the header at once: the file starts before the first rows are read
    buf.seek(0)
    buf.truncate()
    for rows in batches:
        for r in rows:
            w.writerow(_csv_line(r))
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    if buf.getvalue():
        yield buf.getvalue()


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """The CSV of these rows, whole."""
    return "".join(csv_chunks([rows]))


def json_chunks(
    total: int,
    batches: Iterable[Iterable[dict[str, Any]]],
    shown: Callable[[dict[str, Any]], Any],
    default: Callable[[Any], Any],
) -> Iterator[str]:
    """The view as JSON ({"total": N, "studies": [...]}), one piece per batch of rows."""
    yield f'{{"total": {total}, "studies": ['
    first = True
    for rows in batches:
        part = ",\n".join(json.dumps(shown(r), ensure_ascii=False, default=default) for r in rows)
        if part:
            yield ("\n" if first else ",\n") + part
            first = False
    yield "\n]}\n"


def to_xlsx(rows: Iterable[dict[str, Any]], *, title: str = "Studies") -> bytes:
    out = io.BytesIO()
    write_xlsx(rows, out, title=title)
    return out.getvalue()


def xlsx_file(rows: Iterable[dict[str, Any]]) -> BinaryIO:
    """The XLSX of these rows in a temporary file (on disk past a few megabytes), to be read
    from its start: rows go into the workbook as they come, never into a list."""
    f = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)  # noqa: SIM115 (file_chunks closes it)
    write_xlsx(rows, f)
    return f  # type: ignore[return-value]


def write_xlsx(rows: Iterable[dict[str, Any]], out: BinaryIO, *, title: str = "Studies") -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.freeze_panes = "B2"
    bold = Font(bold=True)
    header = []
    for _, heading in COLUMNS:
        cell = WriteOnlyCell(sheet, value=heading)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for r in rows:
        sheet.append([_cell(k, _value(r, k)) for k, _ in COLUMNS])
    book.save(out)


def file_chunks(f: BinaryIO, size: int = 64 * 1024) -> Iterator[bytes]:
    """A file's bytes a piece at a time, closing it at the end."""
    with f:
        f.seek(0)
        while chunk := f.read(size):
            yield chunk
