"""The layers point one way: what each top-level folder may import of ours.

    happysad/cli.py                    the top: may import every layer
    pipeline/                          builds the pipeline from components, names serving code by its path
    components/    serving/            serving uses components' loader and decoders; never the reverse
    data/                              the generator and ingestion
    happysad/contract.py               the bottom: imports nothing of ours

Every .py under the top-level folders is read with `ast` (nothing is
imported), and every `import happysad.x` and `from happysad.x import y`,
at module level or inside a function, is an edge from its file's layer to
the layer it names.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("pipeline", "components", "serving", "data")  # installed as happysad.<folder>
ANYTHING = "anything"
# layer -> the other layers it may import (its own is always allowed).
ALLOWED = {
    "cli": ANYTHING,
    "pipeline": {"components", "serving", "data", "contract", "package"},
    "components": {"contract", "package"},
    "serving": {"components", "contract", "package"},
    "data": {"contract", "package"},
    "contract": set(),
    "package": set(),  # happysad/__init__.py
    "benchmarks": ANYTHING,
    "scripts": ANYTHING,
    "tests": ANYTHING,
}
# What serving may use of components: the session loader, the decoder, the TFLite model, and
# the registry of architectures (explain asks a model's architecture which convolutions to show).
SERVING_USES_OF_COMPONENTS = {"happysad.components.saved_model_bundle", "happysad.components.trainer.image_decoding",
                              "happysad.components.trainer.tflite_model", "happysad.components.trainer.models"}


def layer_of_file(path: Path) -> str:
    """The layer a .py file under ROOT belongs to (a new top-level folder raises: decide its place here)."""
    parts = path.relative_to(ROOT).parts
    if parts[0] == "happysad":
        return {"cli.py": "cli", "contract.py": "contract", "__init__.py": "package"}[parts[-1]]
    if parts[0] in ALLOWED:
        return parts[0]
    raise KeyError(f"{path.relative_to(ROOT)}: a top-level folder with no layer in {__file__}")


def module_of_file(path: Path) -> str:
    """The dotted name a file is installed as (happysad.<folder>.<...>), for relative imports."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] in FOLDERS:
        parts.insert(0, "happysad")
    return ".".join(parts)


def layer_of_module(name: str):
    """The layer of one of our modules (happysad.serving.client -> serving), or None for a module not ours."""
    parts = name.split(".")
    if parts[0] in FOLDERS:  # the folder's path before it installed as happysad.<folder>
        parts.insert(0, "happysad")
    if parts[0] != "happysad":
        return None
    if len(parts) == 1:
        return "package"
    if parts[1] in FOLDERS:
        return parts[1]
    return {"cli": "cli", "contract": "contract"}.get(parts[1], "package")


def imported_modules(source: str, module: str = "") -> list:
    """(line, dotted name) of every import in `source`, at any depth: `import a.b`
    gives a.b; `from a import b` gives a.b (b may be a module or a name in a)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importing module's package
                package = module.split(".")[:-node.level]
                base = ".".join(package + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


OUTPUT_FOLDERS = {"pipeline_output", "serving_model", "bench_output", "build"}  # .gitignore's: runs write them


def python_files() -> list:
    return sorted(p for p in ROOT.rglob("*.py")
                  if not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(ROOT).parts)
                  and p.relative_to(ROOT).parts[0] not in OUTPUT_FOLDERS)


def edges() -> list:
    """(file, line, imported name, from layer, to layer) of every import of ours."""
    found = []
    for path in python_files():
        source_layer = layer_of_file(path)
        for line, name in imported_modules(path.read_text(), module_of_file(path)):
            target = layer_of_module(name)
            if target is not None:
                found.append((path.relative_to(ROOT), line, name, source_layer, target))
    return found


def test_the_scan_sees_both_import_forms_at_module_and_function_level():
    source = ("import happysad.serving.client\n"
              "from happysad.components import saved_model_bundle\n"
              "def f():\n"
              "    from happysad.serving import loopback\n"
              "    import happysad.pipeline.configs as c\n"
              "class A:\n"
              "    def g(self):\n"
              "        from .trainer import image_decoding\n")
    names = {name: layer_of_module(name) for _, name in imported_modules(source, "happysad.components.serving_check")}
    assert names == {"happysad.serving.client": "serving", "happysad.components.saved_model_bundle": "components",
                     "happysad.serving.loopback": "serving", "happysad.pipeline.configs": "pipeline",
                     "happysad.components.trainer.image_decoding": "components"}
    assert layer_of_module("happysad.contract") == "contract" and layer_of_module("tensorflow") is None
    assert layer_of_module("components.trainer.emoji_cnn") == "components"  # the old, pre-install path


def test_every_python_file_has_a_layer_and_the_scan_finds_real_edges():
    layers = {layer_of_file(p) for p in python_files()}
    assert {"cli", "contract", "pipeline", "components", "serving", "data", "tests"} <= layers
    found = {(str(f), to) for f, _, _, _, to in edges()}
    assert ("serving/client.py", "components") in found  # a function-level import of the loader
    assert ("pipeline/pipeline.py", "components") in found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(layer):
    allowed = ALLOWED[layer]
    wrong = [f"{f}:{line} imports {name} ({src} -> {to})" for f, line, name, src, to in edges()
             if src == layer and allowed != ANYTHING and to != src and to not in allowed]
    assert wrong == [], "\n".join(wrong)


def test_serving_uses_only_components_loader_and_decoders():
    used = {(str(f), name) for f, _, name, src, to in edges() if src == "serving" and to == "components"}
    wrong = sorted((f, name) for f, name in used
                   if not any(name == m or name.startswith(m + ".") for m in SERVING_USES_OF_COMPONENTS))
    assert wrong == [], wrong
