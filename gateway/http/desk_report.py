"""The incident report for referral as PDF (fpdf2: pure Python, no system binaries).

The same content as the HTML report (templates/staff/desk_report.html): the incident, its
notes, the session's timeline (drawn from the same layout as the SVG, and as a table), and the
audit log's verification status when the report was made. DejaVu Sans (Debian's
fonts-dejavu-core) is used when installed, so masked names in any script print; otherwise the
PDF core font, with characters outside Latin-1 replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gateway.domain.timeline import TimelineLayout
from gateway.services.desk import IncidentReport

if TYPE_CHECKING:
    from fpdf import FPDF

__all__ = ["report_pdf"]

_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
_COLOURS = {
    "present": (29, 78, 216),
    "held": (180, 83, 9),
    "supervised": (21, 128, 61),
    "below": (185, 28, 28),
    "concern": (185, 28, 28),
    "removed": (17, 17, 17),
}


class _Report:
    """The document and whether its font prints any character (else Latin-1 only)."""

    def __init__(self) -> None:
        # Imported here: fpdf2 brings numpy and its image parsers (half a second of every
        # gateway process's start), and only a report needs it.
        from fpdf import FPDF

        self.pdf: FPDF = FPDF(format="A4")
        self.unicode = False

    def plain(self, value: str) -> str:
        return value if self.unicode else value.encode("latin-1", "replace").decode("latin-1")


def report_pdf(report: IncidentReport, organisation: str) -> bytes:
    report_doc = _Report()
    pdf = report_doc.pdf
    family = "Helvetica"
    if _FONT.exists() and _BOLD.exists():
        pdf.add_font("DejaVu", "", str(_FONT))
        pdf.add_font("DejaVu", "B", str(_BOLD))
        family, report_doc.unicode = "DejaVu", True
    incident = report.incident
    # The document's properties say what it is and the log's state, never a name.
    pdf.set_title(f"Incident report {incident.id}")
    pdf.set_subject(f"Audit log verification: {_status(report)}")
    pdf.set_creation_date(report.generated_at)
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    width = pdf.epw

    def heading(value: str, size: int = 14) -> None:
        pdf.set_font(family, "B", size)
        pdf.multi_cell(width, 8, report_doc.plain(value), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, "", 10)

    def line(value: str) -> None:
        pdf.multi_cell(width, 5, report_doc.plain(value), new_x="LMARGIN", new_y="NEXT")

    heading(f"Incident report: {incident.kind.replace('_', ' ')}", 16)
    line(f"{organisation}. Generated {report.generated_at:%d %b %Y %H:%M} UTC.")
    line(f"Incident {incident.id}; status {incident.status.value}.")
    line(f"Reported {incident.created_at:%d %b %Y %H:%M} UTC by {report.reported_by}.")
    line(f"Summary: {incident.summary}")
    line("What the gateway did: " + ", ".join(incident.what_gateway_did).replace("_", " "))
    if incident.closed_at:
        line(f"Closed {incident.closed_at:%d %b %Y %H:%M} UTC.")

    heading("Audit log verification")
    run = report.verification
    if run is None:
        line("The audit log had not been checked when this report was made.")
    elif run.result == "intact":
        line(f"Intact: {run.checked} entries checked, {run.finished_at:%d %b %Y %H:%M} UTC.")
    elif run.result == "tampered":
        line(f"NOT INTACT: {run.problem} (checked {run.finished_at:%d %b %Y %H:%M} UTC).")
    else:
        line(f"The latest check is {run.result}.")

    heading("Notes")
    if not report.notes:
        line("No notes.")
    for note in report.notes:
        line(f"{note.created_at:%d %b %Y %H:%M} UTC: {note.text}")

    heading("Session timeline")
    if report.timeline is None:
        line("This incident is not linked to a session.")
    else:
        _draw(report_doc, report.timeline.layout, family)
        for row in report.timeline.layout.rows:
            line(f"{row.at:%H:%M:%S}  {row.who}: {row.what}")
    return bytes(pdf.output())


def _draw(report_doc: _Report, layout: TimelineLayout, family: str) -> None:
    """The timeline picture, scaled from the layout's SVG units to the page width."""
    pdf = report_doc.pdf
    scale = pdf.epw / layout.width
    top = pdf.get_y() + 2
    if top + layout.height * scale > pdf.h - 20:
        pdf.add_page()
        top = pdf.get_y() + 2
    left = pdf.l_margin
    pdf.set_font(family, "", 7)
    for lane in (layout.band, *layout.lanes):
        y = top + lane.y * scale
        pdf.set_xy(left, y)
        pdf.cell(layout.axis_x * scale, 20 * scale, report_doc.plain(lane.label))
        for bar in lane.bars:
            pdf.set_fill_color(*_COLOURS.get(bar.kind, (100, 100, 100)))
            inset = 5 * scale if bar.kind == "held" else 0
            pdf.rect(
                left + bar.x * scale,
                y + inset,
                bar.width * scale,
                20 * scale - 2 * inset,
                style="F",
            )
        for mark in lane.markers:
            pdf.set_fill_color(*_COLOURS.get(mark.kind, (17, 17, 17)))
            pdf.rect(left + mark.x * scale - 1, y - 1, 2, 20 * scale + 2, style="F")
    pdf.set_y(top + layout.height * scale + 2)
    pdf.set_font(family, "", 10)


def _status(report: IncidentReport) -> str:
    run = report.verification
    if run is None:
        return "not checked"
    if run.result == "tampered":
        return f"not intact ({run.problem})"
    return run.result
