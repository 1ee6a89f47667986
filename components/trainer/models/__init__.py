"""The Trainer's model architectures, one module each."""
