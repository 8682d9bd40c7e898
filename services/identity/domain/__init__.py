"""identity domain: pure rules and graph logic (no faust, Kafka or Redis)."""
