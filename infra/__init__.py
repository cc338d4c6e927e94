"""The outer ring: settings, PostgreSQL and Kafka plumbing, relay, workers, CLI, embedded servers."""
