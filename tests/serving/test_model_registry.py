"""Version policies, labels, the shipped models.config, and a version that fails to load."""
import shutil

import pytest

from happysad.serving import model_registry
from happysad.serving.model_registry import ModelConfig, ModelRegistry, NotFound, VersionPolicy
from live_server import REPO


@pytest.mark.parametrize("policy, chosen", [
    (VersionPolicy(), [30]),
    (VersionPolicy("latest", num_versions=2), [20, 30]),
    (VersionPolicy("all"), [3, 20, 30]),
    (VersionPolicy("specific", versions=(3, 99)), [3]),
])
def test_version_policies_choose_like_tf_serving(policy, chosen):
    assert policy.choose([20, 3, 30]) == chosen  # numeric order, not string order


def test_the_shipped_models_config_reads_as_tf_serving_would(tmp_path):
    (config,) = model_registry.read_model_config(str(REPO / "serving" / "models.config"))
    assert config.name == "happysad" and config.base_path == "/models/happysad"
    assert config.policy == VersionPolicy("latest", num_versions=2)
    assert config.labels == (("stable", 1),)


def test_a_broken_version_is_retried_while_the_good_one_serves(model_base, tmp_path):
    base = tmp_path / "happysad"
    shutil.copytree(model_base / "1", base / "1")
    broken = base / "5"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"half-copied")
    registry = ModelRegistry(ModelConfig("happysad", str(base), VersionPolicy("latest", num_versions=2),
                                         labels=(("stable", 1),)))
    assert registry.poll() is True
    assert registry.versions() == [1]
    assert registry.resolve().version == 1 and registry.resolve(label="stable").version == 1
    (v1, v5) = sorted(registry.status())
    assert v1 == (1, "AVAILABLE", "") and v5[:2] == (5, "LOADING") and v5[2]
    with pytest.raises(NotFound, match="Specific\\(happysad, 5\\)"):
        registry.resolve(5)
    with pytest.raises(NotFound, match="label: canary"):
        registry.resolve(label="canary")

    shutil.rmtree(broken)  # the copy completes: the next poll loads it
    shutil.copytree(model_base / "1", broken)
    assert registry.poll() is True and registry.versions() == [1, 5]
    assert registry.resolve().version == 5
    assert registry.poll() is False  # nothing new


def test_an_empty_base_path_serves_nothing_and_says_so(tmp_path):
    registry = ModelRegistry(ModelConfig("happysad", str(tmp_path / "none")))
    assert registry.poll() is False
    with pytest.raises(NotFound, match="Could not find any versions of model happysad"):
        registry.status()
    with pytest.raises(NotFound, match="Latest\\(happysad\\)"):
        registry.resolve()


def test_a_broken_new_version_never_takes_the_served_one_offline(model_base, tmp_path):
    """TF Serving's availability-preserving policy, with the default "latest 1"."""
    base = tmp_path / "happysad"
    shutil.copytree(model_base / "1", base / "1")
    registry = ModelRegistry(ModelConfig("happysad", str(base)))
    assert registry.poll() is True and registry.versions() == [1]
    broken = base / "2"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"garbage")  # or saved_model.pb copied before variables/
    for _ in range(3):
        registry.poll()
        assert registry.versions() == [1] and registry.resolve().version == 1
    assert [row[:2] for row in registry.status()] == [(1, "AVAILABLE"), (2, "LOADING")]

    shutil.rmtree(broken)  # the broken push is taken away: it leaves the status list too
    registry.poll()
    assert registry.status() == [(1, "AVAILABLE", "")]

    shutil.copytree(model_base / "1", base / "3")  # a good push replaces version 1
    assert registry.poll() is True and registry.versions() == [3]


def test_folders_that_are_not_ascii_versions_are_ignored(model_base, tmp_path):
    base = tmp_path / "happysad"
    shutil.copytree(model_base / "1", base / "1")
    for name in ("²", "٣", "1a", ".2"):  # "²".isdigit() is True, int("²") fails
        shutil.copytree(model_base / "1", base / name)
    assert model_registry.versions_on_disk(str(base)) == [1]
    registry = ModelRegistry(ModelConfig("happysad", str(base)))
    assert registry.poll() is True and registry.versions() == [1]


def test_model_configs_with_all_specific_several_models_and_a_label_on_an_unloaded_version(model_base, tmp_path):
    base = tmp_path / "happysad"
    for version in (1, 2, 3):
        shutil.copytree(model_base / "1", base / str(version))
    config = tmp_path / "models.config"
    config.write_text(f"""model_config_list {{
  config {{ name: "every" base_path: "{base}" model_platform: "tensorflow"
           model_version_policy {{ all {{}} }} }}
  config {{ name: "pinned" base_path: "happysad" model_platform: "tensorflow"
           model_version_policy {{ specific {{ versions: 1 versions: 3 }} }}
           version_labels {{ key: "stable" value: 1 }} version_labels {{ key: "canary" value: 2 }} }}
}}""")
    every, pinned = model_registry.read_model_config(str(config))
    assert (every.name, every.policy) == ("every", VersionPolicy("all"))
    assert pinned.base_path == str(base)  # relative to the config file
    assert pinned.policy == VersionPolicy("specific", versions=(1, 3))
    models = model_registry.Models([every, pinned])
    models.poll()
    assert models.get("every").versions() == [1, 2, 3]
    assert models.get("pinned").versions() == [1, 3]
    assert models.get("pinned").resolve(label="stable").version == 1
    with pytest.raises(NotFound, match="Specific\\(pinned, 2\\)"):  # canary names a version not loaded
        models.get("pinned").resolve(label="canary")
    config.write_text('model_config_list { config { name: "x" base_path: "a" } config { name: "x" base_path: "b" } }')
    with pytest.raises(ValueError, match="model names repeat"):
        model_registry.read_model_config(str(config))
    config.write_text("model_config_list { config { name: ")
    with pytest.raises(ValueError, match="not a TF Serving model config"):
        model_registry.read_model_config(str(config))
