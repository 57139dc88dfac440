"""Rule files on disk: YAML with line numbers, checksums, loading and embedded tests."""
