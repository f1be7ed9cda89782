"""Example sandboxd client: run with ``python -m sandboxd_client [--addr HOST:PORT]``."""
