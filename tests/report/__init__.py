"""The output formats a machine or a reviewer acts on: text, JSON, GitHub."""
