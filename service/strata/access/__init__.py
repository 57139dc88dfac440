"""Who may call: bearer tokens (only their hashes stored) and the role each call needs."""
