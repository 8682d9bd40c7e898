"""kizuna's contract: the events, commands and topics every service shares.

Imports nothing but pydantic and orjson, so upstream producers can depend on it alone.
"""
