"""Runnable studies of the paper, one module each: ``python -m experiments.<name> --help``.

Each writes ``results/<name>/`` (``results.npz`` + ``manifest.json``, see :mod:`ccjax.io`)
and its figures under ``figures/`` (with another ``--out``: into that folder, unless
``--figures`` is given), and can re-plot from saved results with ``--plot-only``.
"""
