"""happysad: a TFX pipeline that tells happy emoji faces from sad ones.

One installed name for the repo's four top-level folders (pyproject.toml's
package-dir): happysad.pipeline, happysad.components, happysad.data and
happysad.serving. This package holds the `happysad` CLI, their front door.
"""
