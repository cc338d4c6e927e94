"""Connectors to legacy silos (SQL, files, webhooks, Kafka, AMQP): coming with the adapters issue."""
