"""The PostgreSQL backend: one database shared by any number of processors.

:class:`~.database.PostgresDatabase` is the :class:`~faultlens_collector.store.Database`
for a ``postgresql://`` URL (``faultlens serve --store postgresql://USER@HOST/DB``);
:mod:`.server` is its connection pool, transactions and migrations, :mod:`.groups`
and :mod:`.oplog` the failure groups and the operator log, :mod:`.actions` the action
engine's tables with the fleet's decisions in them. It needs the ``postgres`` extra
(``pip install 'faultlens[postgres]'``: psycopg 3 and psycopg_pool); nothing here
imports psycopg before a PostgreSQL store is opened.
"""
