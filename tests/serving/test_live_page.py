"""The live page of `happysad serve`, driven in headless Chromium: pick a face, read the label."""
import tensorflow as tf
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from happysad.data import emoji_faces


def test_a_picked_face_is_classified_by_the_servers_rest_api(server, browser, in_process, tmp_path):
    fresh = emoji_faces.generate(tmp_path / "fresh", count=2, seed=4242)  # faces no model has seen
    face = fresh["sad"][0]
    expected = in_process.signatures["serving_default"](images=tf.constant([face.read_bytes()]))
    expected_name = expected["class_name"].numpy()[0].decode()
    expected_probability = float(max(expected["probabilities"].numpy()[0]))

    browser.get(server.rest + "/")  # redirects to the page for the served model
    wait = WebDriverWait(browser, 60)
    wait.until(lambda b: "version 1" in b.find_element(By.ID, "status").text)
    browser.find_element(By.ID, "file").send_keys(str(face))
    result = browser.find_element(By.ID, "result")
    wait.until(lambda b: result.get_attribute("data-class-name"))
    assert result.get_attribute("data-class-name") == expected_name
    assert abs(float(result.get_attribute("data-probability")) - expected_probability) < 1e-4
    assert result.text == f"{expected_name} ({100 * expected_probability:.1f}%)"
    assert browser.find_element(By.ID, "preview").get_attribute("naturalWidth") == "150"


def test_the_page_shows_a_server_error_in_words(server, browser, tmp_path):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("this is not an image")
    browser.get(server.rest + "/ui/index.html?model=happysad")
    browser.find_element(By.ID, "file").send_keys(str(not_an_image))
    result = browser.find_element(By.ID, "result")
    WebDriverWait(browser, 60).until(lambda b: "error" in result.text)
    assert "error 400" in result.text and "image" in result.text.lower()
