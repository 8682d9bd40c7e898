"""The gateway: HTTP collector (Segment-compatible), LINE webhook and POS CSV import."""
