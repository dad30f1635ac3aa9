"""Mixtures: token budgets per source, tokenization, packing for CPT, chat formatting for SFT."""
