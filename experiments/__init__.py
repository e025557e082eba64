"""Runnable studies of the paper, one module each: ``python -m experiments.<name> --help``.

Each writes ``results/<name>/`` (``results.npz`` + ``manifest.json``, see :mod:`ccjax.io`)
and a figure under ``figures/``, and can re-plot from saved results with ``--plot-only``.
"""
