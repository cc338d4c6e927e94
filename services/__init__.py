"""Use cases (the eventsourcing Application), queries and the HTTP API routers."""
