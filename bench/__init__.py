"""tasktable's benchmark suite: ``make bench`` (``python -m bench``).

Nothing here is imported by the library or by ``make test`` timings; see
``bench/README.md`` for the workloads, the peers and how to run them.
"""
