"""Pure segmenter logic: customer facts, RFM/CPM scoring, segment changes, reports.

Nothing here imports faust, Kafka or Redis; times are epoch seconds (int) and business
days are ordinals in the business time zone (see :mod:`calendar`).
"""
