"""Training and evaluation on the published splits: LoRA SFT, per-task scoring, the model × task matrix.

Modules that need torch (sft, generation, throughput) are imported only by what uses them, so the metrics,
the data loading and the matrix work with the base install.
"""
