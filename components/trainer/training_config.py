"""The Trainer's settings, one dataclass on both sides of TFX's custom_config."""
import dataclasses

from happysad.components.trainer import models


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How the Trainer trains: sent as dataclasses.asdict() in its custom_config,
    rebuilt by run_fn with from_custom_config()."""

    epochs: int = 15  # the seed notebook's cap
    batch_size: int = 10  # the seed notebook's batch
    threshold: float = 0.999  # stop once epoch training accuracy reaches this
    seed: int = 42
    architecture: str = models.DEFAULT  # a name in models.ARCHITECTURES
    learning_rate: float | None = None  # Adam's; None: the architecture's own DEFAULT_LEARNING_RATE
    # Random flips/rotation/zoom/contrast on the training split: with them the
    # model reads art styles it never trained on far better (README).
    augment: bool = True

    def __post_init__(self):
        models.get(self.architecture)  # raises for a name the registry does not know

    @classmethod
    def from_custom_config(cls, custom_config: dict) -> "TrainingConfig":
        return cls(**{f.name: custom_config[f.name] for f in dataclasses.fields(cls)})
