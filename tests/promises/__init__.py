"""Cross-cutting guarantees: a user's database untouched, passwords hidden, signals, SIGKILL,
hangs, bad input, wording.
"""
