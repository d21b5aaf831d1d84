"""tmux: the lean client, nudge queues, the nudger and delivery status."""
