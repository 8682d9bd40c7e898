"""The notifier's rules as pure functions: consent ledger, reachability, channel choice,
retry policy and unsubscribe tokens. Nothing here imports faust, Kafka, Redis or HTTP."""
