"""The outer ring: settings, PostgreSQL and Kafka, the relay, workers, CLI, embedded servers."""
