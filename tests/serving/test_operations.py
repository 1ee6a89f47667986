"""What an operator of the server relies on: warm-up at load, metrics, config reload without a restart."""
import base64
import time

import grpc
import requests
from prometheus_client.parser import text_string_to_metric_families
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

from happysad.serving import metrics
from live_server import MODEL, start_server, wait_until, write_models_config


def _predict(server, model, face, **extra):
    return requests.post(f"{server.rest}/v1/models/{model}:predict",
                         json={"instances": [{"b64": base64.b64encode(face).decode()}], **extra}, timeout=60)


def test_versions_are_warmed_up_before_they_serve(server):
    assert "loaded happysad version 1 from" in server.log.read_text()
    assert "(4 warm-up requests)" in server.log.read_text()


def test_prometheus_metrics_count_requests_and_list_loaded_versions(server, faces):
    assert _predict(server, MODEL, faces[0]).status_code == 200
    assert _predict(server, MODEL, faces[0], signature_name="nope").status_code == 400
    response = requests.get(f"{server.rest}/monitoring/prometheus/metrics", timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    samples = [s for family in text_string_to_metric_families(response.text) for s in family.samples]

    def value(name, **labels):
        return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))

    assert value(":tensorflow:serving:request_count_total", model_name=MODEL, signature_name="serving_default",
                 API="REST:predict", status="200") >= 1
    # A signature the model lacks is counted, under OTHER: label values come from what is served.
    assert value(":tensorflow:serving:request_count_total", model_name=MODEL, signature_name=metrics.OTHER,
                 status="400") >= 1
    assert not [s for s in samples if s.labels.get("signature_name") == "nope"]
    assert value(":tensorflow:serving:request_latency_count", model_name=MODEL, API="REST:predict") >= 2
    assert value(":tensorflow:serving:model_version_state", model_name=MODEL, version="1", state="AVAILABLE") == 1


def test_the_model_config_is_reloaded_from_the_file_and_over_grpc(model_base, tmp_path, faces):
    config = write_models_config(tmp_path / "models.config", model_base)
    server = start_server(tmp_path, "--model-config-file", str(config), "--model-config-file-poll-seconds", "0.3")
    try:
        assert _predict(server, MODEL, faces[0]).status_code == 200
        assert _predict(server, "second", faces[0]).status_code == 404
        # An operator adds a model and a label to the file: served without a restart.
        config.write_text(_two_models(model_base))
        assert wait_until(lambda: _predict(server, "second", faces[0]).status_code == 200)
        assert requests.get(f"{server.rest}/v1/models/{MODEL}/labels/canary", timeout=30).status_code == 200
        # A config being edited that does not parse: the old one keeps serving.
        config.write_text("model_config_list { config { name: ")
        time.sleep(1.5)
        assert _predict(server, "second", faces[0]).status_code == 200
        assert "model config not applied" in server.log.read_text()

        # gRPC ModelService.HandleReloadConfigRequest: back to one model.
        request = model_management_pb2.ReloadConfigRequest()
        model = request.config.model_config_list.config.add(name=MODEL, base_path=str(model_base),
                                                            model_platform="tensorflow")
        model.model_version_policy.latest.num_versions = 1
        with grpc.insecure_channel(server.grpc) as channel:
            response = model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, timeout=60)
            assert response.status.error_code == 0
            bad = model_management_pb2.ReloadConfigRequest()
            bad.config.model_config_list.config.add(name="", base_path="")
            try:
                model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(bad, timeout=60)
                raise AssertionError("a config without a name was accepted")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "needs a name" in e.details()
        assert _predict(server, "second", faces[0]).status_code == 404
        assert _predict(server, MODEL, faces[0]).status_code == 200
    finally:
        assert server.stop() == 0


def _two_models(base) -> str:
    return "model_config_list {\n" + "".join(
        f'  config {{\n    name: "{name}"\n    base_path: "{base}"\n    model_platform: "tensorflow"\n{labels}  }}\n'
        for name, labels in ((MODEL, '    version_labels { key: "canary" value: 1 }\n'), ("second", ""))) + "}\n"
