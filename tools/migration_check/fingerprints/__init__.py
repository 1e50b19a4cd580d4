"""What a check read, and whether it still holds: shared by every process, stdlib only.

The worker records (inputs, closure), the CLI re-checks (digests) before it serves a cached answer.
"""
