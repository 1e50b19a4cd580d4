"""The doors: click commands, options, exit codes, the pytest plugin. CLI process, stdlib + click.

In: argv, the environment. Out: exit code and the report; the checking itself is run/'s.
"""
