"""Project shapes beyond one env.py and one database: multidb, a Flask app, --start-from."""
