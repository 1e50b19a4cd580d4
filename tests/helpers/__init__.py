"""What the tests share: the checker as a process, the servers, projects and their edits.

Test modules import from here, never from each other: a test file holds tests only.
"""
