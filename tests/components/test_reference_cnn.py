"""The model is the reference CNN, with a sigmoid head for two classes and a softmax one for more."""
import keras
import numpy as np
import pytest

from happysad.components.trainer.models import reference_cnn


def test_layer_list_is_the_reference():
    model = reference_cnn.build_model()
    assert model.input_shape == (None, 150, 150, 3)
    described = []
    for layer in model.layers:
        config = layer.get_config()
        kind = type(layer).__name__
        if kind == "Rescaling":
            described.append((kind, {"scale": config["scale"]}))
        elif kind == "Conv2D":
            described.append((kind, {"filters": config["filters"], "kernel_size": tuple(config["kernel_size"]),
                                     "activation": config["activation"]}))
        elif kind == "MaxPooling2D":
            described.append((kind, {"pool_size": tuple(config["pool_size"])}))
        elif kind == "Dense":
            described.append((kind, {"units": config["units"], "activation": config["activation"]}))
        else:
            described.append((kind, {}))
    assert described == [
        ("Rescaling", {"scale": pytest.approx(1 / 255)}),
        ("Conv2D", {"filters": 16, "kernel_size": (3, 3), "activation": "relu"}),
        ("MaxPooling2D", {"pool_size": (2, 2)}),
        ("Conv2D", {"filters": 32, "kernel_size": (3, 3), "activation": "relu"}),
        ("MaxPooling2D", {"pool_size": (2, 2)}),
        ("Conv2D", {"filters": 64, "kernel_size": (3, 3), "activation": "relu"}),
        ("MaxPooling2D", {"pool_size": (2, 2)}),
        ("Flatten", {}),
        ("Dense", {"units": 128, "activation": "relu"}),
        ("Dense", {"units": 1, "activation": "sigmoid"}),
    ]
    assert model.count_params() == 2_391_329  # the reference summary's total


def test_compiled_with_adam_binary_crossentropy_and_accuracy():
    model = reference_cnn.build_model(learning_rate=0.002)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.002)
    assert model.loss == "binary_crossentropy"
    model.fit(np.zeros((2, 150, 150, 3)), np.array([0.0, 1.0]), epochs=1, verbose=0)
    assert "accuracy" in model.get_metrics_result()


def test_three_or_more_classes_get_a_softmax_head():
    model = reference_cnn.build_model(num_classes=4)
    last = model.layers[-1]
    assert (last.get_config()["units"], last.get_config()["activation"]) == (4, "softmax")
    assert model.loss == "sparse_categorical_crossentropy"
    probabilities = model(np.zeros((2, 150, 150, 3), np.float32)).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="at least 2 classes"):
        reference_cnn.build_model(num_classes=1)
