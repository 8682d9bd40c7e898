"""Shared plumbing for kizuna services: settings, Kafka/faust/Redis factories, dead letters."""
