"""The rule registry: publish rule files as immutable versions, activate, alias, roll back, audit.

``store`` is the SQL, ``service`` the use cases every transport and the CLI
call; ``cache`` and ``serving`` turn the active versions into what the
decision service reads, and ``watcher`` keeps that current on every replica.
"""
