"""Pure gateway logic: Segment mapping, LINE webhook parsing, POS CSV validation."""
