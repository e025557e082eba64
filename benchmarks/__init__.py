"""Throughput, evaluation cost and device checks of ccjax: ``python -m benchmarks.<name> --help``.

Each module uses only ccjax's public API (and the experiments' command-line helpers).
"""
