"""identity: stitches every identifier (cookie, member id, email, phone, mall id, POS card,
app device, LINE user) into one customer, in real time. See DESIGN.md."""
