"""Ray Serve OpenAI-compatible serving: auth, validation, backpressure, streaming."""
