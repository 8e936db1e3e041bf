"""Tiny random DistilBERT / RoBERTa / XLM-RoBERTa / RoFormer checkpoints built with `transformers` itself, with
real tokenizers: minilm's WordPiece for DistilBERT, a byte-level BPE trained on BBC news with RoBERTa's
`<s> … </s>` post-processor for the RoBERTa family, a WordPiece trained on BBC news by encoderlab for RoFormer.
Nothing is downloaded."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch

MAX_POSITIONS = 64  # longest sequence the tiny models take
SENTENCE_FILES = {  # sentence-transformers files: mean pooling + L2 normalisation, as all-distilroberta-v1
    "modules.json": [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ],
    "sentence_bert_config.json": {"max_seq_length": MAX_POSITIONS, "do_lower_case": False},
    "1_Pooling/config.json": {"word_embedding_dimension": 32, "pooling_mode_cls_token": False,
                              "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
                              "pooling_mode_mean_sqrt_len_tokens": False},
}


def bbc_sentences(n: int = 600) -> list[str]:
    """Real sentences from the bundled BBC news articles."""
    from encoderlab.data.catalog import load_dataset

    articles = load_dataset("bbc-news").train.texts[:200]
    sentences = [s.strip() for text in articles for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]
    return sentences[:n]


def perturb_(model: torch.nn.Module, seed: int = 0) -> None:
    """Move every trainable parameter off its initial value (LayerNorms start at 1/0, biases at 0) so that a
    swapped or missing tensor in a key map changes the outputs. Frozen tables (RoFormer's rotary sinusoids,
    DistilBERT's sinusoidal positions) are fixed functions of the config, not weights: they stay."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=generator) * 0.05)


def write_sentence_transformers_files(directory: Path) -> None:
    for name, content in SENTENCE_FILES.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(json.dumps(content))


def build_bpe_tokenizer(directory: Path, sentences: list[str]):
    """A byte-level BPE with RoBERTa's special tokens (<s>=0, <pad>=1, </s>=2, <unk>=3, <mask>=4) and its
    post-processor, saved by transformers (tokenizer.json + tokenizer_config.json)."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(sentences, trainer=trainer)
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                            add_prefix_space=False)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>",
        pad_token="<pad>", unk_token="<unk>", mask_token="<mask>", model_max_length=MAX_POSITIONS)
    fast.save_pretrained(directory)
    return fast


def save_random_model(cfg, directory: Path, task_model: bool, seed: int):
    """Build the model of `cfg` (its ...ForMaskedLM with `task_model`), perturb its weights, save it with the
    sentence-transformers files; -> the transformers model, in eval mode."""
    import transformers

    model_class = transformers.AutoModelForMaskedLM if task_model else transformers.AutoModel
    model = model_class.from_config(cfg).eval()
    perturb_(model, seed)
    model.save_pretrained(directory)
    write_sentence_transformers_files(directory)
    return model


def build_roberta(directory: Path, sentences: list[str], model_type: str = "roberta",
                  task_model: bool = False, seed: int = 0):
    """A 2-layer RoBERTa (or XLM-RoBERTa) with a BPE tokenizer; -> the transformers model, in eval mode.
    task_model: save a ...ForMaskedLM (encoder under "roberta.", head under "lm_head.") instead."""
    import transformers

    torch.manual_seed(seed)
    tokenizer = build_bpe_tokenizer(directory, sentences)
    config_class = transformers.XLMRobertaConfig if model_type == "xlm-roberta" else transformers.RobertaConfig
    cfg = config_class(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=37, max_position_embeddings=MAX_POSITIONS + 2, type_vocab_size=1,
                       pad_token_id=1, layer_norm_eps=1e-5)
    return save_random_model(cfg, directory, task_model, seed)


def build_distilbert(directory: Path, wordpiece_dir: Path, task_model: bool = False, seed: int = 0, **overrides):
    """A 2-layer DistilBERT with minilm's WordPiece tokenizer files; -> the transformers model, in eval mode."""
    import transformers

    torch.manual_seed(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(wordpiece_dir / name, directory / name)
    cfg = transformers.DistilBertConfig(**{**dict(vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=37,
                                                  max_position_embeddings=MAX_POSITIONS), **overrides})
    return save_random_model(cfg, directory, task_model, seed)


def build_wordpiece_tokenizer(directory: Path, sentences: list[str], vocab_size: int = 600) -> None:
    """A WordPiece trained here on `sentences` and saved as `encoderlab pretrain` saves its tokenizer
    (tokenizer.json + a tokenizer_config.json naming PreTrainedTokenizerFast)."""
    from encoderlab.tokenization import TokenizerConfig, train_tokenizer

    tokenizer = train_tokenizer(sentences, TokenizerConfig(vocab_size=vocab_size))
    tokenizer.save_trained(directory, model_max_length=MAX_POSITIONS)


def build_roformer(directory: Path, sentences: list[str], task_model: bool = False, seed: int = 0, **overrides):
    """A 2-layer RoFormer (rotary positions, post-LN, as `encoderlab pretrain` trains by default) with a
    WordPiece trained on `sentences`; -> the transformers model, in eval mode."""
    import transformers

    torch.manual_seed(seed)
    directory.mkdir(parents=True, exist_ok=True)
    build_wordpiece_tokenizer(directory, sentences)
    vocab = json.loads((directory / "tokenizer.json").read_text())["model"]["vocab"]
    cfg = transformers.RoFormerConfig(**{**dict(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                                num_attention_heads=2, intermediate_size=37,
                                                max_position_embeddings=MAX_POSITIONS, layer_norm_eps=1e-5),
                                         **overrides})
    return save_random_model(cfg, directory, task_model, seed)


def padded_batches(directory: Path, texts: list[str], side: str, size: int = 16):
    """(input_ids, attention_mask) batches of `texts` from the directory's own tokenizer, as transformers'
    AutoTokenizer pads them on `side` ("right" or "left")."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(directory))
    tokenizer.padding_side = side
    for start in range(0, len(texts), size):
        batch = tokenizer(texts[start:start + size], padding=True, truncation=True, max_length=MAX_POSITIONS,
                          return_tensors="pt")
        yield batch["input_ids"], batch["attention_mask"]


def worst_difference(model, reference, batches) -> float:
    """Max-abs difference of the last hidden states on real tokens between `model` (ours, or a transformers
    model) and the transformers `reference`."""
    worst = 0.0
    with torch.inference_mode():
        for ids, mask in batches:
            expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
            got = model(ids, mask)
            got = getattr(got, "last_hidden_state", got)
            worst = max(worst, (got - expected)[mask.bool()].abs().max().item())
    return worst
