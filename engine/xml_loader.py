"""Hardened XML loading for uploaded BPMN/DMN: no DTDs, no entities, no network, a size cap."""

from __future__ import annotations

from lxml import etree

MAX_XML_BYTES = 5 * 1024 * 1024


class XmlRejected(ValueError):
    pass


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        remove_comments=False,
        huge_tree=False,
    )


def parse_xml(content: bytes | str, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """Parse untrusted XML into an element tree, refusing anything with a DOCTYPE."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    if len(content) > max_bytes:
        raise XmlRejected(f"file is {len(content)} bytes; the limit is {max_bytes}")
    if not content.strip():
        raise XmlRejected("file is empty")
    try:
        root = etree.fromstring(content, _parser())
    except etree.XMLSyntaxError as exc:
        raise XmlRejected(f"not well-formed XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise XmlRejected("DOCTYPE declarations are not allowed")
    return root
