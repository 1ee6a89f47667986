"""The Trainer's user module (entry point: trainer_module.run_fn): the two models, the decoding and the export.

The modules import each other as this package (`from happysad.components.trainer
import image_decoding`); the models are in models/, and the model contract they read
is happysad/contract.py. Code outside this folder may import the dependency-free ones too.
"""
