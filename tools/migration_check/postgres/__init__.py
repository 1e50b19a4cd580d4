"""The throwaway PostgreSQL: binaries, the server, provisioning and scratch databases. CLI process.

psycopg is imported lazily, and only to create scratch databases on a server --database-url names.
"""
