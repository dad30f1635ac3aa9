"""Curation: exact and MinHash near-duplicate dedup, n-gram decontamination against every benchmark."""
