"""Model families anibench loads from published checkpoints (one module per family)."""
