"""Connectors to legacy silos (SQL, files, webhooks, Kafka, AMQP): not built yet."""
