"""The Trainer's user module (entry point: trainer_module.run_fn) and the model contract.

The modules import each other as this package (`from components.trainer import
emoji_cnn`). Code outside this folder may import the dependency-free ones too.
"""
