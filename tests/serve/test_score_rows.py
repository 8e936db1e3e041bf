"""/v1/score takes a table row as an object {column: number}, as a CSV row is read (an autoencoder trained on a
user's CSV lists its columns in /v1/models; an object was refused with 'Input should be a valid list')."""

import numpy as np
import pytest

from encoderlab.artifacts.autoencoder import ArrayEncoder, AutoencoderInfo, build_model
from encoderlab.models.autoencoder import AutoencoderConfig
from encoderlab.serve.limits import APIError
from encoderlab.serve.schemas import ScoreRequest
from encoderlab.serve.served import ServedAutoencoder


def _served(columns):
    model = build_model(AutoencoderConfig(input_shape=(3,), hidden=(4,), latent_dim=2, output="identity",
                                          reconstruction="mse"))
    info = AutoencoderInfo(name="sensors.csv", kind="tabular", sample_shape=[3], columns=columns,
                           scaling={"kind": "standardize", "offset": [20.0, 1000.0, 0.0], "scale": [1.0, 5.0, 1.0]},
                           labels="anomaly", label_column="status" if columns else None)
    return ServedAutoencoder("ae", ArrayEncoder(model, info))


def test_a_row_object_is_the_same_sample_as_its_values_in_column_order():
    served = _served(["temp °C", "pressure", "vib"])
    body = ScoreRequest(model="ae", input=[{"vib": 0.1, "pressure": 1003.0, "temp °C": 21.5, "status": "ok"},
                                           [21.5, 1003.0, 0.1]])
    by_name, by_position = served.samples(body.input)
    np.testing.assert_array_equal(by_name, by_position)
    scores = served.score([by_name, by_position])
    assert scores[0].score == scores[1].score
    with pytest.raises(APIError, match=r"input\[0\] has no column\(s\) \['pressure'\]"):
        served.samples([{"temp °C": 20, "vib": 0}])


def test_a_row_object_for_a_model_without_named_columns_says_what_to_send():
    with pytest.raises(APIError, match=r"not trained on a table with named columns; send a nested list .* \[3\]"):
        _served(None).samples([{"a": 1}])


def _image_served(channels=1):
    model = build_model(AutoencoderConfig(input_shape=(channels, 8, 8), hidden=(16,), latent_dim=2,
                                          output="sigmoid", reconstruction="bce"))
    info = AutoencoderInfo(name="photos", kind="image", sample_shape=[channels, 8, 8],
                           scaling={"kind": "divide", "offset": 0.0, "scale": 255.0}, labels="none")
    return ServedAutoencoder("ae", ArrayEncoder(model, info))


def _png(pixels: np.ndarray) -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_an_image_sample_may_be_a_base64_file_read_as_in_training():
    """{"image": base64 PNG} is the same sample as its pixels as numbers; a colour PNG for a grey model is read
    grey (as `predict --input FOLDER` reads it), and a wrong size or a broken file is a 422 naming the input."""
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    served = _image_served()
    from_file, from_numbers = served.samples([{"image": _png(pixels)}, pixels[None].tolist()])
    np.testing.assert_array_equal(from_file, from_numbers)
    colour = np.repeat(pixels[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(served.samples([{"image": _png(colour)}])[0], from_numbers)
    with pytest.raises(APIError, match=r"input\[0\]"):
        served.samples([{"image": _png(np.zeros((9, 9), np.uint8))}])
    with pytest.raises(APIError, match=r"cannot read image input\[1\]\.image"):
        served.samples([pixels[None].tolist(), {"image": "bm90IGFuIGltYWdl"}])  # base64 of "not an image"
    with pytest.raises(APIError, match=r"input\[0\]\.image is not valid base64"):
        served.samples([{"image": "%%%"}])
    with pytest.raises(APIError, match=r"trained on tabular rows"):
        _served(["a", "b", "c"]).samples([{"image": _png(pixels)}])
