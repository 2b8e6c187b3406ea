"""The dataset: per-micrograph ledger, append-only combined stack and its star files."""
