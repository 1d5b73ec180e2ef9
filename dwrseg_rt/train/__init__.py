"""Training, losses and evaluation."""
