"""The Trainer's user module (entry point: trainer_module.run_fn).

TFX installs each .py here as a top-level module of the user-code wheel, so
the modules import each other by bare name (`import emoji_cnn`). Code outside
this folder may import the dependency-free ones as `components.trainer.X`.
"""
