"""serving/docker-compose.yml runs the real TF Serving over what the Pusher writes."""
import re

import yaml

from live_server import REPO
from happysad.pipeline import configs, local_runner
from happysad.serving import model_registry


def test_the_compose_file_serves_the_pushers_folder_with_the_locks_tf_release():
    compose = yaml.safe_load((REPO / "serving" / "docker-compose.yml").read_text())
    (service,) = compose["services"].values()
    tf_version = re.search(r"^tensorflow==(\d+\.\d+)\.", (REPO / "requirements.lock").read_text(), re.M).group(1)
    assert re.fullmatch(rf"tensorflow/serving:{re.escape(tf_version)}\.\d+", service["image"]), service["image"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in service["volumes"])
    pushed = (REPO / local_runner.DEFAULT_SERVING_DIR / configs.MODEL_NAME)
    assert (REPO / "serving" / [h for h, c in mounts.items() if c == f"/models/{configs.MODEL_NAME}"][0]).resolve() \
        == pushed.resolve()
    for host, container in mounts.items():
        flag = next((c for c in service["command"] if c.endswith("=" + container)), None)
        if container.endswith(".config"):
            assert (REPO / "serving" / host).is_file(), host
            assert flag, f"{container} is mounted but no flag reads it"
    (model,) = model_registry.read_model_config(str(REPO / "serving" / "models.config"))
    assert model.name == configs.MODEL_NAME and model.base_path == f"/models/{configs.MODEL_NAME}"
    assert "path: \"/monitoring/prometheus/metrics\"" in (REPO / "serving" / "monitoring.config").read_text()
