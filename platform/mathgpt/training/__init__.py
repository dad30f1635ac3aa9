"""Training: continued pre-training and SFT with DeepSpeed under Ray Train."""
