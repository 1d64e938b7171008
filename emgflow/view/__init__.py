"""A live view of a running graph in the browser (`emgflow run GRAPH --view`): the wiring, the
per-node table, scopes of tapped streams, latency histograms, the hand, and a stop button.
Needs the `view` extra (starlette, uvicorn, websockets); the charts are uPlot, shipped in static/."""
