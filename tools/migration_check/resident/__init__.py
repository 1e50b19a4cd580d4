"""The resident worker (--keep-warm): libraries imported once, one forked worker per check.

Serves the CLI's run/resident_client over a Unix socket; a request whose inputs differ is refused.
"""
