"""The file backend: plain files under one state directory (the default)."""
