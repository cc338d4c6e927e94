"""The HTTP API: routers handed their dependencies by ``create_app``."""
