"""segmenter: rolling RFM and CPM state per customer; emits segment changes (issue 5)."""
