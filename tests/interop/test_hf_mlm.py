"""Our BertForMaskedLM exported in Hugging Face layout: transformers.BertForMaskedLM gives the same logits,
our importer reads it back, and TextEncoder loads the encoder part."""

import pytest
import torch

from encoderlab import TextEncoder
from encoderlab.interop.hf_bert import HF_MLM_HEAD, load_hf_bert_mlm, save_hf_bert_mlm
from encoderlab.models.bert import BertForMaskedLM
from encoderlab.models.presets import preset_config
from encoderlab.tokenization import TokenizerConfig, train_tokenizer


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    texts = ["the cat sat on the mat", "a dog barked at the cat", "the mat was red"] * 10
    tokenizer = train_tokenizer(texts, TokenizerConfig(vocab_size=60, min_frequency=1))
    model = BertForMaskedLM(preset_config("bert-tiny", vocab_size=tokenizer.vocab_size, max_positions=32,
                                          pooler=False)).eval()
    with torch.no_grad():  # move the head away from its init so a wrong mapping cannot go unnoticed
        for p in model.head.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    directory = tmp_path_factory.mktemp("mlm")
    save_hf_bert_mlm(model, directory)
    tokenizer.save_trained(directory)
    return model, tokenizer, directory


def _batch(vocab_size):
    ids = torch.randint(5, vocab_size, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    return ids, mask


@torch.inference_mode()
def test_transformers_masked_lm_gives_the_same_logits(exported):
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    model, _, directory = exported
    hf = transformers.BertForMaskedLM.from_pretrained(str(directory)).eval()
    assert hf.cls.predictions.decoder.weight.data_ptr() == hf.bert.embeddings.word_embeddings.weight.data_ptr()
    ids, mask = _batch(model.cfg.vocab_size)
    ours = model(ids, mask)
    theirs = hf(input_ids=ids, attention_mask=mask).logits
    assert (ours - theirs)[mask.bool()].abs().max().item() < 1e-5


@torch.inference_mode()
def test_round_trip_and_text_encoder(exported):
    model, _, directory = exported
    ids, mask = _batch(model.cfg.vocab_size)
    again = load_hf_bert_mlm(directory)
    assert torch.equal(again(ids, mask), model(ids, mask))
    encoder = TextEncoder.from_pretrained(directory)
    assert encoder.encode(["the cat sat"]).shape == (1, 128)


def test_head_names_follow_transformers():
    assert set(HF_MLM_HEAD) == {"cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
                                "cls.predictions.transform.LayerNorm.weight",
                                "cls.predictions.transform.LayerNorm.bias", "cls.predictions.bias"}
