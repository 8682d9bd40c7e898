"""A simulated Japanese omnichannel shop that feeds kizuna like real upstream systems do.

``python -m simulator`` sends web and app events to the gateway's Segment API, LINE
webhooks (signed with the channel secret), and produces store (POS), mall, location and
consent events straight to the raw topics, as upstream integrations would.
``python -m simulator.console`` shows the pipeline live from each worker's ``/metrics``.
"""
