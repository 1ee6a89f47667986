"""The happysad TFX pipeline: definition, configuration, runner and CLI."""
