"""Benchmarks; run each as a module from the repository root (`python -m bench.embedder_bench`).

One job per module, so the two benchmarks share their pieces instead of copying them:
`clips` (test speech), `floor` (the gRPC + one Redis GET baseline server), `harness`
(server processes, load, timed series, statistics) and `report` (targets, table, plot,
result files). `embedder_bench` and `synthesizer_bench` are the entry points.
"""
