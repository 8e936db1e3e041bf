"""Request and response bodies, as pydantic models: they validate requests and write the OpenAPI document.

Responses are built as plain dicts (a 2048 x 384 float matrix through pydantic would cost more than the model);
the response models here only document them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

Texts = StrictStr | list[StrictStr]
Items = list[StrictStr | dict[str, Any]]
"""Inputs of the kinds that do not read text alone, as JSON objects: audio clips ({"audio": base64 of a
.wav/.flac/.ogg file}), table rows ({column: value}, multimodal classifiers), images ({"image": base64 of a .png},
image-text models, which take texts in the same list). Each route checks them against the model it picks."""
EmbeddingInput = StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]] | Items


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI clients send fields of their own (user, ...)

    model: StrictStr | None = Field(None, description="A served model's name (GET /v1/models); default: the first "
                                                      "served model that does what the route does.")


class EmbeddingRequest(Request):
    input: EmbeddingInput = Field(description="A text, a list of texts, or token ids of this model's own vocabulary "
                                              "(one list, or a list of lists), as POST /v1/tokenize returns them. "
                                              "Audio classifiers: [{\"audio\": base64 of a .wav/.flac/.ogg file}]; "
                                              "multimodal classifiers: [{column: value}] rows; image-text models: "
                                              "[{\"image\": base64 of a .png}] and texts (strings or "
                                              "{\"text\": ...}) in one list.",
                                  examples=[["A man is playing a guitar."],
                                            [{"image": "<base64 of a .png>"}, "red apple"]])
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="base64: each embedding as the base64 of its little-endian float32 bytes.")
    dimensions: StrictInt | None = Field(None, description="Only the model's own dimension is accepted: these models "
                                                           "were not trained to be cut (Matryoshka).")
    user: StrictStr | None = None
    truncate: StrictBool = Field(True, description="Cut texts longer than the model's limit (the response header "
                                                   "X-Truncated-Inputs counts them); false: refuse them with 413.")


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


class TokenizeRequest(Request):
    input: Texts


class ClassifyRequest(Request):
    input: StrictStr | Items = Field(description="Text classifiers: a text or a list of texts. Audio classifiers: "
                                               "[{\"audio\": base64 of a .wav/.flac/.ogg file}]; multimodal "
                                               "classifiers: [{column: value}], one object per table row with the "
                                               "columns the model was trained on (GET /v1/models lists them).",
                                   examples=[["I loved it"], [{"audio": "<base64 of hello.flac>"}],
                                             [{"Review Text": "Runs small", "Age": 40, "Class Name": "Dresses"}]])


class TagRequest(Request):
    input: StrictStr | list[StrictStr | list[StrictStr]] = Field(
        description="A sentence or a list of sentences; a sentence is a list of words or a string of "
                    "space-separated words.")


class GenerateRequest(Request):
    input: Texts
    beam_size: StrictInt = Field(1, ge=1, le=16, description="1: greedy decoding; more: beam search.")


class ScoreRequest(Request):
    input: list[list[Any] | dict[str, Any]] = Field(
        description="Samples as nested lists of numbers, each of the model's sample shape (a table row: its columns' "
                    "values), in the data's raw units; a table row may also be an object {column: number} (the "
                    "training columns, any order; other keys such as the label are ignored), and an image sample an "
                    "object {\"image\": base64 of a PNG/JPEG file} (read as the training images were: grey or "
                    "colour, resized by the run's image_size=).")
    return_embedding: StrictBool = False
    return_reconstruction: StrictBool = False


class RecommendRequest(Request):
    user: StrictStr | None = Field(None, description="A user of the training data: their top unseen items.")
    items: list[StrictStr] | None = Field(None, description="A new user's history (item ids), for models that take "
                                                            "one instead of a user id.")
    top: StrictInt = Field(10, ge=1, le=1000)
    exclude_seen: StrictBool = Field(True, description="Leave out the items the user already has.")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail

