"""Ingestion: turn PDF and DOCX files into indexed chunks with exact provenance."""
