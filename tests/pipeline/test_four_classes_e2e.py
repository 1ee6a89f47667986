"""End to end: three or more classes train a softmax model, through the same pipeline."""
from pathlib import Path

from ml_metadata.proto import metadata_store_pb2

from happysad.data import emoji_faces

from e2e_workspace import Workspace


def test_four_expressions_train_a_softmax_model_end_to_end(tmp_path):
    """Three or more classes: softmax head, categorical metrics, schema and
    serving outputs that follow the class set. The reference CNN: a test of the
    class set, not of the model."""
    import tensorflow as tf

    ws = Workspace(data=tmp_path / "faces", root=tmp_path / "pipeline_output", serving=tmp_path / "serving_model")
    emoji_faces.generate(ws.data, count=160, seed=7, classes=emoji_faces.EXPRESSIONS)
    result = ws.run("--runner", "local", "--arch", "reference", expect=(0, 3))
    out = result.stdout
    assert "sparse_categorical_accuracy" in out and "recall[surprised]" in out
    (schema_gen,) = ws.executions("ImportSchemaGen")
    schema = (Path(ws.io(schema_gen, metadata_store_pb2.Event.OUTPUT, "schema")[0].uri) / "schema.pbtxt").read_text()
    assert "max: 3" in schema and 'value: "surprised"' in schema
    (trainer,) = ws.executions("Trainer")
    model_dir = Path(ws.io(trainer, metadata_store_pb2.Event.OUTPUT, "model")[0].uri) / "Format-Serving"
    serve = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    fresh = emoji_faces.generate(tmp_path / "fresh", count=40, seed=99, classes=emoji_faces.EXPRESSIONS)
    files = [(f, cls) for cls in emoji_faces.EXPRESSIONS for f in fresh[cls]]
    answer = serve(images=tf.constant([f.read_bytes() for f, _ in files]))
    assert answer["probabilities"].shape == (40, 4)
    predicted = [n.decode() for n in answer["class_name"].numpy()]
    assert set(predicted) <= set(emoji_faces.EXPRESSIONS)
    accuracy = sum(p == c for p, (_, c) in zip(predicted, files)) / len(files)
    print(f"\n4-class accuracy on 40 fresh faces: {accuracy:.3f}")
    assert accuracy >= 0.7, accuracy  # chance is 0.25
