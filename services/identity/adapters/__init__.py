"""identity adapters: the Redis graph view (Lua, atomic) and its document codec."""
