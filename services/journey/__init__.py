"""journey: marketers' scenarios with durable timers, caps, quiet hours, experiments (issue 6)."""
