"""The demo: the seed's mass actions as tasktable handlers, run by ``tasktable demo``."""
