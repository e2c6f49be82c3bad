"""The member card as server-rendered SVG: a QR code and a Code 128 barcode.

Both are returned as inline SVG markup with no `style` attributes (the CSP forbids inline
styles) and scale with CSS through their viewBox. segno draws the QR code; python-barcode only
encodes Code 128 into bars and modules, which we draw ourselves for the same reason.
"""

from __future__ import annotations

import itertools

import barcode
import segno
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .numbers import member_qr_payload

BARCODE_QUIET_ZONE = 10  # modules of white either side, as scanners need
BARCODE_HEIGHT = 40  # modules; a comfortable aspect ratio on a phone


def member_no_grouped(member_no: str) -> str:
    """812345678901 → "8123 4567 8901", easier to read aloud at the till."""
    return " ".join(member_no[i : i + 4] for i in range(0, len(member_no), 4))


def member_qr_svg(*, member_no: str, title: str) -> SafeString:
    return qr_svg(payload=member_qr_payload(member_no), title=title)


def qr_svg(*, payload: str, title: str) -> SafeString:
    """Any text (a member card, a referral link) as an inline QR code SVG."""
    # micro=False: segno would otherwise pick a Micro QR for short payloads, which most
    # phone cameras and many till scanners cannot read.
    qr = segno.make(payload, error="m", micro=False)
    # segno escapes the title itself.
    svg = qr.svg_inline(
        scale=1,
        border=4,
        omitsize=True,
        dark="#000",
        light="#fff",
        title=title,
        svgclass="qr-code",
    )
    return mark_safe(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S308 - segno output


def member_barcode_svg(*, member_no: str, title: str) -> SafeString:
    modules = barcode.get("code128", member_no).build()[0]
    width = len(modules) + 2 * BARCODE_QUIET_ZONE
    bars = []
    x = BARCODE_QUIET_ZONE
    for bit, run in itertools.groupby(modules):
        run_width = len(list(run))
        if bit == "1":
            bars.append(f"M{x} 0h{run_width}v{BARCODE_HEIGHT}h-{run_width}z")
        x += run_width
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="barcode-code128" '
        f'viewBox="0 0 {width} {BARCODE_HEIGHT}" shape-rendering="crispEdges">'
        f"<title>{escape(title)}</title>"
        f'<rect width="{width}" height="{BARCODE_HEIGHT}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(bars)}"/>'
        "</svg>"
    )
    return mark_safe(svg)  # noqa: S308 - built from digits and an escaped title
