"""`make bench`: Backstop measured against the raw PostgreSQL tools (see __main__)."""
