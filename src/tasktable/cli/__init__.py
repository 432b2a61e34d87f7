"""The ``tasktable`` command: a thin layer over the public API."""
