"""Kafka sink and Redis stores of the gateway."""
