"""Adapters: state serialisation, the Redis profile view and population, partitioning."""
