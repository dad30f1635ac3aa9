"""Evaluation: benchmark registry, few-shot and chat prompts, scoring and reports."""
