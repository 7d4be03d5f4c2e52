"""Incident response: kill switch, incident record, blast radius, notices and regulator reports."""
