"""Renderers: a result or an error as text, JSON or GitHub annotations. CLI process, no printing.

In: CheckResult. Out: strings the CLI writes.
"""
