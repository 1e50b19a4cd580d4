"""The resident worker (--keep-warm) and its faults."""
