"""The paper's four problem-solving data synthesis methods, one module each (settings, prompts, parsing,
verification), found by name through the method registry (mathgpt.methods); job.py runs them by shard on Ray
Data, rounds.py streams their engine requests."""
