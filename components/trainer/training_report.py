"""What the Trainer leaves for people: per-epoch figures as JSON and a PNG."""
import time

import keras
import tensorflow as tf



class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of each epoch."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(round(time.perf_counter() - self._start, 3))


def summarise(history: dict, epoch_seconds: list, threshold: float, stopped_epoch, max_epochs: int) -> dict:
    """Keras History.history -> a JSON-able summary of the run."""
    per_epoch = {key: [round(float(v), 5) for v in values] for key, values in history.items()}
    return {
        "epochs_run": len(epoch_seconds),
        "max_epochs": max_epochs,
        "threshold": threshold,
        "threshold_epoch": stopped_epoch,  # None: never reached
        "final_accuracy": per_epoch.get("accuracy", [None])[-1],
        "final_val_accuracy": per_epoch.get("val_accuracy", [None])[-1],
        "epoch_seconds": epoch_seconds,
        "history": per_epoch,
    }


def plot_curves(summary: dict, path: str) -> None:
    """Accuracy and loss per epoch (train and eval) as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = summary["history"]
    epochs = range(1, summary["epochs_run"] + 1)
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((acc_ax, "accuracy", "Accuracy"), (loss_ax, "loss", "Loss")):
        ax.plot(epochs, history[key], "o-", label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "s--", label="eval")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    acc_ax.axhline(summary["threshold"], color="grey", linestyle=":", label="threshold")
    if summary["threshold_epoch"]:
        acc_ax.axvline(summary["threshold_epoch"], color="green", alpha=0.3)
    fig.suptitle(f"happysad training (threshold {summary['threshold']} reached at epoch "
                 f"{summary['threshold_epoch'] or 'never'})")
    fig.tight_layout()
    with tf.io.gfile.GFile(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
