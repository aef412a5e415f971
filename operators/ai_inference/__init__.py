"""ai-inference: each NIfTI volume → label map through a model on a Triton-protocol server."""
