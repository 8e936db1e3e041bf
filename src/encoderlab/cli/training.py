"""The training commands: `encoderlab <task> --config FILE [key=value ...] [--resume OUT_DIR]`."""

from __future__ import annotations

from .common import (
    TRAINING_COMMAND,
    ConfigFile,
    Overrides,
    ResumeDir,
    app,
    check_command_of,
    echo_final,
    echo_metrics,
    summary,
)


@app.command(context_settings=TRAINING_COMMAND)
def pretrain(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Pretrain a BERT encoder from scratch with masked-language modelling (see docs/pretraining.md).

    \b
    encoderlab pretrain data=corpus.txt out_dir=runs/mine max_steps=2000
    encoderlab pretrain --config configs/pretrain-tiny-en.yaml
    \b
    Main keys: data=FILE|FOLDER|catalog names  text_field=  out_dir=
    model.preset=bert-tiny|bert-mini|...  tokenizer.vocab_size=
    max_seq_len=  batch_size=  max_steps=  lr=  threads=
    (an unknown key is an error that lists every valid one)"""
    from ..tasks.pretrain import PretrainConfig, pretrain_mlm
    from ..training import run_task

    check_command_of(config, resume, "pretrain")
    metrics = run_task(pretrain_mlm, PretrainConfig, config, overrides or [], resume_dir=resume)
    echo_metrics(metrics, ("initial_eval_loss", "eval_loss", "initial_eval_accuracy", "eval_accuracy", "step",
                            "seconds"))
    echo_final(metrics, extra=f"  loss curve: {metrics.get('loss_curve')}")


@app.command(context_settings=TRAINING_COMMAND)
def finetune(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Fine-tune an encoder: classify texts, tag tokens or train sentence embeddings (docs/finetuning.md).

    \b
    encoderlab finetune data=reviews.csv text_column=review label_column=stars
    encoderlab finetune task=tag data=tags.conll init=runs/pretrain mode=lora
    encoderlab finetune task=embed data=pairs.jsonl init=minilm
    encoderlab finetune data=emails.csv long_text=chunk window_pooling=attention
    \b
    Main keys: task=classify|tag|embed  data=FILE|catalog name
    text_column= label_column=  init=minilm|random|RUN_DIR
    mode=full|frozen|lora  out_dir=  epochs=  max_steps=  lr=  threads=
    long_text=truncate|chunk (read whole texts in overlapping windows)
    window= stride= window_pooling=mean|max|attention
    (an unknown key is an error that lists every valid one)"""
    from ..training import run_task

    check_command_of(config, resume, "finetune")
    from ..tasks.finetune import finetune_task

    task_fn, config_cls = finetune_task(config, overrides or [], resume)
    metrics = run_task(task_fn, config_cls, config, overrides or [], resume_dir=resume)
    echo_metrics(metrics, ("test_accuracy", "test_macro_f1", "test_token_accuracy", "validation_accuracy",
                            "validation_token_accuracy", "initial_validation_recall_at_1", "validation_recall_at_1",
                            "initial_validation_same_label_at_1", "validation_same_label_at_1",
                            "trainable_parameters", "step", "train_seconds", "seconds"))
    echo_final(metrics)


@app.command(context_settings=TRAINING_COMMAND)
def autoencode(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Train an autoencoder or VAE on MNIST, Shuttle or your arrays (see docs/autoencoders.md)."""
    from ..tasks.autoencode import AutoencodeConfig, train_autoencoder
    from ..training import run_task

    metrics = run_task(train_autoencoder, AutoencodeConfig, config, overrides or [], resume_dir=resume)
    echo_metrics(metrics, ("test_mse", "pca_test_mse", "test_bce", "test_neg_elbo", "test_nll", "test_auroc",
                            "test_ap", "step"), digits=5)
    echo_final(metrics)


@app.command(context_settings=TRAINING_COMMAND)
def seq2seq(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Train an LSTM/GRU + attention or a Transformer encoder-decoder on CMUdict (grapheme-to-phoneme),
    Spanish-English verses or your own pairs (see docs/seq2seq.md).

    \b
    encoderlab seq2seq --config configs/seq2seq-g2p.yaml
    encoderlab seq2seq --config configs/seq2seq-es-en-transformer.yaml
    encoderlab seq2seq data=pairs.csv source_column=word target_column=ipa model.kind=transformer
    \b
    Main keys: data=cmudict|bible-es-en|FILE  model.kind=lstm|gru|transformer
    init=RUN_DIR (warm-start a Transformer's encoder)  label_smoothing=  beam_size=  length_penalty=
    max_steps=  lr=  schedule=cosine|inverse_sqrt|...  warmup_steps=  threads=  out_dir="""
    from ..tasks.seq2seq import seq2seq_command
    from ..tasks.seq2seq_scoring import summary_lines

    metrics = seq2seq_command(config, overrides or [], resume)
    for line in summary_lines(metrics):  # BLEU / chrF for text targets, word accuracy, error rate
        summary(line)
    echo_metrics(metrics, ("step", "train_cpu_seconds", "cpu_seconds"))
    echo_final(metrics)


@app.command(context_settings=TRAINING_COMMAND)
def prune(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Prune a fine-tuned classifier (magnitude, heads, ffn, heads+ffn), fine-tune it to recover, report
    sparsity, accuracy and speed before/after (see docs/pruning.md)."""
    from ..tasks.prune import PruneConfig, prune_classifier
    from ..training import run_task

    metrics = run_task(prune_classifier, PruneConfig, config, overrides or [], resume_dir=resume)
    echo_metrics(metrics, ("sparsity", "parameters_before", "parameters_after", "test_accuracy_before",
                            "test_accuracy_pruned", "test_accuracy", "test_macro_f1", "step", "seconds"))
    for workload, speed in metrics.get("speed", {}).items():
        summary(f"{workload}: {speed['sentences_per_s_before']:.1f} -> {speed['sentences_per_s_after']:.1f} "
                 f"sentences/s ({speed['speedup']:.2f}x)")
    echo_final(metrics)


@app.command(context_settings=TRAINING_COMMAND)
def distill(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Distil a teacher into a shallower student: embeddings or classifier logits (docs/distillation.md)."""
    from ..tasks.distill import DistillConfig
    from ..tasks.distill import distill as distill_task
    from ..training import run_task

    metrics = run_task(distill_task, DistillConfig, config, overrides or [], resume_dir=resume)
    echo_metrics(metrics, ("initial_test_cosine_mean", "test_cosine_mean", "test_cosine_worst",
                            "initial_student_test_accuracy", "student_test_accuracy", "teacher_test_accuracy",
                            "speedup_variable_length", "student_parameters", "teacher_parameters", "step",
                            "train_seconds", "seconds"))
    echo_final(metrics, "student", f"  (layers {metrics.get('layers')} of the teacher's "
                                    f"{metrics.get('teacher_layers')})")
