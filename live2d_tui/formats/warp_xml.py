"""Warp's XML files (``previous.settings`` and per-movie ``<root>.xml``): reading and writing.

Warp 1 writes UTF-16 with a BOM, Warp 2 UTF-8; both are parsed from *bytes* so the XML
declaration decides the encoding. Warp writes these files in place and non-atomically, so a
parse error is a normal, transient event: callers re-read on the next poll.

The documents are ``<Param Name= Value=/>`` elements, in sections. :func:`render_xml` writes
them as Warp's ``XmlTextWriter`` does (the simulator's sessions): Warp 1 UTF-16LE with a BOM and
CRLF lines (a Windows program), Warp 2 UTF-8 with a BOM.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

import numpy as np


class WarpFileError(ValueError):
    """A Warp file is malformed or half-written; the message names the file and the problem."""


def parse_xml_bytes(data: bytes, source: str) -> ET.Element:
    """Parse XML bytes (UTF-8 or UTF-16, with or without BOM) into the root element.

    Raises:
        WarpFileError: empty or malformed content (names ``source``).
    """
    if not data.strip(b"\x00\r\n\t \xef\xbb\xbf\xff\xfe"):
        raise WarpFileError(f"{source}: file is empty (Warp may be writing it)")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise WarpFileError(f"{source}: malformed XML ({exc}); Warp may be writing it") from None


def is_utf16(data: bytes) -> bool:
    """True for UTF-16 content (Warp 1 writes ``previous.settings`` and movie XML so)."""
    return data[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(data) > 1 and data[1:2] == b"\x00")


def params(element: ET.Element | None) -> dict[str, str]:
    """``<Param Name=".." Value=".."/>`` children of ``element`` as a dict."""
    if element is None:
        return {}
    return {
        p.get("Name", ""): p.get("Value", "")
        for p in element.findall("Param")
        if p.get("Name") is not None
    }


def as_bool(text: str | None, default: bool) -> bool:
    """Warp's ``True``/``False`` (case-insensitive); ``default`` when absent or unparsable."""
    if text is None:
        return default
    lowered = text.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return default


def as_float(text: str | None, default: float, source: str, name: str) -> float:
    """A decimal with ``.``; ``default`` when absent.

    Raises:
        WarpFileError: present but not a number.
    """
    if text is None or not text.strip():
        return default
    try:
        return float(text)
    except ValueError:
        raise WarpFileError(f"{source}: {name}={text!r} is not a number") from None


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return "null"
    if isinstance(value, float):
        # shortest round-trip text, like .NET's invariant float formatting ("3", "0.8", "1.25")
        return np.format_float_positional(value, trim="-")
    return str(value)


XmlSection = tuple[str, Sequence[tuple[str, object]]]
"""A section element name and its ``(Param name, value)`` pairs."""


def render_xml(
    root: str,
    attributes: Sequence[tuple[str, object]],
    params: Sequence[tuple[str, object]],
    sections: Sequence[XmlSection],
    *,
    warp2: bool,
) -> bytes:
    """An indented XML document as Warp's ``XmlTextWriter`` produces it, encoded for W1/W2."""
    newline = "\n" if warp2 else "\r\n"
    encoding_name = "utf-8" if warp2 else "utf-16"
    lines = [f'<?xml version="1.0" encoding="{encoding_name}"?>']
    attrs = "".join(f" {name}={quoteattr(_fmt(value))}" for name, value in attributes)
    lines.append(f"<{root}{attrs}>")
    lines += [f"  <Param Name={quoteattr(n)} Value={quoteattr(_fmt(v))} />" for n, v in params]
    for section, items in sections:
        if not items:
            lines.append(f"  <{section} />")
            continue
        lines.append(f"  <{section}>")
        lines += [f"    <Param Name={quoteattr(n)} Value={quoteattr(_fmt(v))} />" for n, v in items]
        lines.append(f"  </{section}>")
    lines.append(f"</{root}>")
    text = newline.join(lines)
    if warp2:
        return b"\xef\xbb\xbf" + text.encode("utf-8")
    return b"\xff\xfe" + text.encode("utf-16-le")
