"""Redis stores and channel providers behind small Protocols."""
