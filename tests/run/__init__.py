"""The CLI-process pipeline: several configs in one run, ignore rules, the git base."""
