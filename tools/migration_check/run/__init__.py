"""The CLI process's pipeline: one config, several configs, the worker process, the resident client.

In: Settings. Out: CheckResult or CheckError; ignores, baseline and git history are applied here.
"""
