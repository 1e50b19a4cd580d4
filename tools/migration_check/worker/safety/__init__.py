"""The safety observation: what each statement of the new revisions does on a real server.

Worker side (docs/safety.md): the locks, rewrites and scans observed while the revisions a
change adds run through env.py, and the findings and safe forms that follow from them.
"""
