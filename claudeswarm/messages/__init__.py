"""Messages: the record, sending and reading, filters, the rate limiter."""
