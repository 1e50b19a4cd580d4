"""The doors: the CLI, its subcommands (revision, baseline), option order, the pytest plugin, the
commit hook.
"""
