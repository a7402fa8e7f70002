"""Where rows live: the database layer (SQLite | PostgreSQL), the one schema declaration and its migrations,
the entry store, backups, and the announcement of committed changes to every worker."""
