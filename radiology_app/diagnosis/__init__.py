"""The fused image+text differential-diagnosis model (torch, transformers and peft live only here)."""
