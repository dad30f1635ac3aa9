"""Training: continued pre-training and SFT under Ray Train, on DeepSpeed or PyTorch FSDP2 (training/backends)."""
