"""Speaker encoders: models that turn 16 kHz mono audio into named tensors."""
