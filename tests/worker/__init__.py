"""The worker's pipeline: env.py's connection, the upgrade, its exit, the history round trips."""
