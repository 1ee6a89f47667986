"""`explain` on a model sure of its answer: the maps come from the logit, so they do not vanish."""
import numpy as np
import tensorflow as tf

from happysad.components.trainer import serving_signatures
from happysad.components.trainer.models import reference_cnn
from happysad.data import emoji_faces
from happysad.serving import explain


def test_a_saturated_sigmoid_still_gets_a_saliency_map(tmp_path):
    """A head whose sigmoid rounds to exactly 1.0 (as a long-trained reference CNN's did on some
    faces): the probability's gradient is 0 there, and the saliency map was NaN."""
    tf.keras.utils.set_random_seed(5)
    model = reference_cnn.build_model()
    kernel, _ = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel, np.array([200.0], np.float32)])  # P(sad) = 1.0 in float32
    serving_signatures.export(model, ["happy", "sad"], str(tmp_path / "1"))
    face = (emoji_faces.DEFAULT_DIR / "sad" / "sad_001.png").read_bytes()
    explanation = explain.explain(str(tmp_path / "1"), face)
    assert explanation.class_name == "sad" and explanation.probability == 1.0
    assert np.isfinite(explanation.saliency).all() and explanation.saliency.max() == 1.0
