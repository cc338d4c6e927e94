"""The pure case model: the Case aggregate, its events, case types and domain errors.

Imports only the standard library and ``eventsourcing.domain`` (checked by import-linter).
"""
