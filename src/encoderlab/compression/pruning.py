"""Pruning a BERT encoder: unstructured weight magnitude, or whole attention heads and feed-forward neurons.

Unstructured (`magnitude_masks`): zero the smallest-|w| weights of the encoder blocks' Linear layers (query,
key, value, out, up, gate, down; embeddings, norms, biases and the pooler are left alone), with one
threshold over all of them (scope=global; Gordon et al., 2020, "Compressing BERT: Studying the Effects of
Weight Pruning on Transfer Learning"; Chen et al., 2020, "The Lottery Ticket Hypothesis for Pre-trained BERT
Networks") or the same fraction in every matrix (scope=layer). The masks are plain boolean tensors, one per
weight, kept outside the model: `WeightMasks.keep_during_training(optimizer)` re-applies them after every
optimizer step, so pruned weights stay exactly zero through recovery fine-tuning while the state dict (and
so checkpoints and saved models) keeps its ordinary names and shapes. Zeros in a dense matrix save no time:
PyTorch's CPU matmuls do not skip them, so an unstructured-pruned model runs at the speed of the dense one
(measured in docs/pruning.md); it only compresses well.

Structured (`structured_importance` + `prune_heads` / `prune_ffn`): score each head by the head-importance
of Michel et al., 2019 ("Are Sixteen Heads Really Better than One?"): a gate ξ_h multiplies head h's output
and I_h = Σ_batches |∂L/∂ξ_h| at ξ = 1. Feed-forward neurons get the same first-order Taylor score through a
gate on the neuron's activation (Molchanov et al., 2017/2019, "Importance Estimation for Neural Network
Pruning"). Scores are normalised per layer by their L2 norm before a global ranking (Michel et al.,
section 4.2). The chosen heads and neurons are then physically removed: their rows of query/key/value/up
(and gate) and their columns of out/down go, the Linear layers become smaller and the model really runs
faster. `BertConfig.layer_heads` / `layer_d_ff` record the new per-block sizes, so the model saves and
reloads through the ordinary checkpoint paths.

    masks = magnitude_masks(model.bert, sparsity=0.5)          # unstructured; masks.apply(model.bert)
    scores = structured_importance(model, batches, loss_fn)    # (heads, neurons) per layer, from data
    prune_heads(model.bert, choose_units(scores.heads, 0.25))  # physically removes a quarter of the heads
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ..errors import ConfigError
from ..models.bert import BertModel

Scope = Literal["global", "layer"]
PRUNABLE = ("query", "key", "value", "out", "up", "gate", "down")


def check_sparsity(sparsity: float, what: str = "sparsity") -> float:
    if not 0.0 <= float(sparsity) < 1.0:
        raise ConfigError(f"{what}={sparsity} must be in [0, 1): the fraction to remove, e.g. {what}=0.5 "
                          "(1.0 would remove everything)")
    return float(sparsity)


def check_scope(scope: str) -> Scope:
    if scope not in ("global", "layer"):
        raise ConfigError(f"scope={scope!r} is unknown; choose global (one ranking over all layers) or layer "
                          "(the same fraction in every layer)")
    return scope  # type: ignore[return-value]


def prunable_linears(bert: BertModel) -> dict[str, nn.Linear]:
    """The encoder blocks' Linear layers, by name relative to the BertModel (e.g. 'blocks.0.attn.query')."""
    found = {}
    for name, module in bert.named_modules():
        if isinstance(module, nn.Linear) and name.startswith("blocks.") and name.rsplit(".", 1)[-1] in PRUNABLE:
            found[name] = module
    return found


# ============================================================================ unstructured
@dataclass
class WeightMasks:
    """Boolean keep-masks (True = kept) of the encoder's Linear weights, by layer name."""

    masks: dict[str, torch.Tensor]

    def apply(self, bert: BertModel) -> None:
        """Zero every pruned weight in place."""
        linears = prunable_linears(bert)
        with torch.no_grad():
            for name, mask in self.masks.items():
                weight = linears[name].weight
                weight.mul_(mask.to(device=weight.device, dtype=weight.dtype))

    def keep_during_training(self, bert: BertModel, optimizer: torch.optim.Optimizer):
        """Re-apply the masks after every optimizer step (pruned weights stay 0); returns the hook handle.

        The optimizer may move a pruned weight during its step (AdamW's momentum and weight decay do); the hook
        zeroes it again before anything reads it, so every forward pass sees exactly the pruned model."""
        self.apply(bert)
        return optimizer.register_step_post_hook(lambda *_: self.apply(bert))


def magnitude_masks(bert: BertModel, sparsity: float, scope: Scope = "global") -> WeightMasks:
    """Keep-masks that remove the `sparsity` fraction of smallest-magnitude encoder Linear weights, ranked
    over all of them together (global) or within each matrix (layer). Exact counts: ties are broken by
    position, not by a threshold that might remove more."""
    sparsity, scope = check_sparsity(sparsity), check_scope(scope)
    linears = prunable_linears(bert)
    weights = {name: m.weight.detach().abs().float().flatten() for name, m in linears.items()}
    masks: dict[str, torch.Tensor] = {}
    if scope == "layer":
        for name, flat in weights.items():
            masks[name] = _keep_largest(flat, round(sparsity * flat.numel())).view_as(linears[name].weight)
        return WeightMasks(masks)
    everything = torch.cat(list(weights.values()))  # (P,) every prunable weight's |w|
    keep = _keep_largest(everything, round(sparsity * everything.numel()))
    for name, part in zip(weights, keep.split([w.numel() for w in weights.values()]), strict=True):
        masks[name] = part.view_as(linears[name].weight)
    return WeightMasks(masks)


def _keep_largest(values: torch.Tensor, n_remove: int) -> torch.Tensor:
    keep = torch.ones(values.numel(), dtype=torch.bool)
    if n_remove > 0:
        keep[torch.argsort(values, stable=True)[:n_remove]] = False
    return keep


def weight_sparsity(bert: BertModel) -> dict[str, Any]:
    """Fraction of exactly-zero weights in each encoder Linear layer, per block and overall."""
    per_layer, zeros, total = {}, 0, 0
    per_block: dict[int, list[int]] = {}
    for name, linear in prunable_linears(bert).items():
        w = linear.weight.detach()
        z, n = int((w == 0).sum()), w.numel()
        per_layer[name] = round(z / n, 6)
        block = per_block.setdefault(int(name.split(".")[1]), [0, 0])
        block[0] += z
        block[1] += n
        zeros += z
        total += n
    return {"sparsity": zeros / total if total else 0.0, "zero_weights": zeros, "prunable_weights": total,
            "per_block": {str(b): round(z / n, 6) for b, (z, n) in sorted(per_block.items())},
            "per_layer": per_layer}


# ============================================================================ structured: importance
@contextlib.contextmanager
def gated(bert: BertModel, head_gates: Sequence[torch.Tensor] | None = None,
          neuron_gates: Sequence[torch.Tensor] | None = None) -> Iterator[None]:
    """Multiply each head's output (head_gates[i]: (n_heads_i,)) and each feed-forward neuron's activation
    (neuron_gates[i]: (d_ff_i,)) by a gate while the block runs. A gate of 0 removes the unit from the function
    exactly; gates that require grad give ∂loss/∂gate, the importance score. Works on padded and packed input.

    Heads are gated at the input of the output projection, where they sit side by side as (…, nh·hs); this
    equals Michel et al.'s mask on the attention probabilities, since a head's output is linear in them."""
    handles = []
    try:
        for i, block in enumerate(bert.blocks):
            if head_gates is not None:
                attn = block.attn

                def gate_heads(_module, args, gate=head_gates[i], attn=attn):
                    x = args[0]  # (..., nh·hs)
                    heads = x.view(*x.shape[:-1], attn.n_heads, attn.d_head) * gate[:, None].to(x.dtype)
                    return (heads.view_as(x),)

                handles.append(attn.out.register_forward_pre_hook(gate_heads))
            if neuron_gates is not None:
                def gate_neurons(_module, args, gate=neuron_gates[i]):
                    return (args[0] * gate.to(args[0].dtype),)  # (..., d_ff)

                handles.append(block.ffn.down.register_forward_pre_hook(gate_neurons))
        yield
    finally:
        for handle in handles:
            handle.remove()


@dataclass
class Importance:
    """Per-layer importance scores (higher = more important): heads[i] is (n_heads_i,), neurons[i] (d_ff_i,)."""

    heads: list[torch.Tensor]
    neurons: list[torch.Tensor]
    batches: int


def structured_importance(model: nn.Module, batches: Iterable[Any],
                          loss_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, Any]],
                          bert: BertModel | None = None) -> Importance:
    """Σ over batches of |∂loss/∂gate| for every head and feed-forward neuron of `bert` (default model.bert),
    with dropout off. `loss_fn(model, batch) -> (mean loss, n)` is the task's training loss."""
    bert = bert if bert is not None else model.bert
    device = next(bert.parameters()).device
    head_gates = [torch.ones(b.attn.n_heads, device=device, requires_grad=True) for b in bert.blocks]
    neuron_gates = [torch.ones(b.ffn.down.in_features, device=device, requires_grad=True) for b in bert.blocks]
    heads = [torch.zeros(g.shape) for g in head_gates]
    neurons = [torch.zeros(g.shape) for g in neuron_gates]
    was_training = model.training
    model.eval()
    count = 0
    try:
        with gated(bert, head_gates, neuron_gates):
            for batch in batches:
                loss, _ = loss_fn(model, batch)
                grads = torch.autograd.grad(loss, head_gates + neuron_gates)
                for total, grad in zip(heads + neurons, grads, strict=True):
                    total += grad.detach().abs().cpu()
                count += 1
    finally:
        model.train(was_training)
    if count == 0:
        raise ConfigError("importance needs at least one batch of data; give importance_examples >= 1")
    return Importance(heads, neurons, count)


def choose_units(scores: Sequence[torch.Tensor], fraction: float, scope: Scope = "global",
                 min_keep: int = 1) -> dict[int, list[int]]:
    """Which units (heads or neurons) to remove: layer -> sorted indices, the `fraction` least important of
    all units. global: one ranking of the per-layer L2-normalised scores (Michel et al., 2019); layer: the
    same fraction of every layer. Every layer keeps at least `min_keep` units."""
    fraction, scope = check_sparsity(fraction), check_scope(scope)
    chosen: dict[int, list[int]] = {}
    if scope == "layer":
        for i, s in enumerate(scores):
            n = min(round(fraction * s.numel()), s.numel() - min_keep)
            if n > 0:
                chosen[i] = sorted(torch.argsort(s, stable=True)[:n].tolist())
        return chosen
    normalised = [s / (s.norm() + 1e-20) for s in scores]
    ranked = sorted((float(v), i, j) for i, s in enumerate(normalised) for j, v in enumerate(s.tolist()))
    n_remove = round(fraction * sum(s.numel() for s in scores))
    left = [s.numel() for s in scores]
    for _, i, j in ranked:
        if n_remove == 0:
            break
        if left[i] > min_keep:
            chosen.setdefault(i, []).append(j)
            left[i] -= 1
            n_remove -= 1
    return {i: sorted(units) for i, units in sorted(chosen.items())}


# ============================================================================ structured: removal
def _linear_like(linear: nn.Linear, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    """A new Linear holding `weight` (out, in) and `bias`, on the same device and dtype, same trainability."""
    new = nn.Linear(weight.size(1), weight.size(0), bias=bias is not None, device=weight.device,
                    dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    new.requires_grad_(linear.weight.requires_grad)
    return new


def _keep_outputs(linear: nn.Linear, rows: torch.Tensor) -> nn.Linear:
    bias = None if linear.bias is None else linear.bias.detach()[rows]
    return _linear_like(linear, linear.weight.detach()[rows], bias)


def _keep_inputs(linear: nn.Linear, cols: torch.Tensor) -> nn.Linear:
    bias = None if linear.bias is None else linear.bias.detach()
    return _linear_like(linear, linear.weight.detach()[:, cols], bias)


def _check_units(units: dict[int, Sequence[int]], sizes: list[int], what: str, key: str) -> dict[int, list[int]]:
    checked = {}
    for layer, indices in units.items():
        layer = int(layer)
        if not 0 <= layer < len(sizes):
            raise ConfigError(f"{key}: layer {layer} does not exist; the model has layers 0..{len(sizes) - 1}")
        removed = sorted({int(j) for j in indices})
        if any(not 0 <= j < sizes[layer] for j in removed):
            raise ConfigError(f"{key}: layer {layer} has {what} 0..{sizes[layer] - 1}, got {removed}")
        if len(removed) >= sizes[layer]:
            raise ConfigError(f"{key}: removing all {sizes[layer]} {what} of layer {layer} would cut the layer "
                              f"out; keep at least one (lower the sparsity, or use scope=global, which keeps one "
                              f"per layer)")
        if removed:
            checked[layer] = removed
    return checked


def prune_heads(bert: BertModel, heads: dict[int, Sequence[int]]) -> BertModel:
    """Remove attention heads in place: layer -> head indices (current numbering). Updates bert.cfg."""
    sizes = [block.attn.n_heads for block in bert.blocks]
    heads = _check_units(heads, sizes, "heads", "prune_heads")
    for layer, removed in heads.items():
        attn = bert.blocks[layer].attn
        kept = [h for h in range(attn.n_heads) if h not in set(removed)]
        idx = torch.cat([torch.arange(h * attn.d_head, (h + 1) * attn.d_head) for h in kept])  # (kept·hs,)
        idx = idx.to(attn.query.weight.device)
        attn.query, attn.key, attn.value = (_keep_outputs(p, idx) for p in (attn.query, attn.key, attn.value))
        attn.out = _keep_inputs(attn.out, idx)
        attn.n_heads = len(kept)
    bert.cfg = dataclasses.replace(bert.cfg, layer_heads=[block.attn.n_heads for block in bert.blocks])
    return bert


def prune_ffn(bert: BertModel, neurons: dict[int, Sequence[int]]) -> BertModel:
    """Remove feed-forward neurons in place: layer -> neuron indices. Updates bert.cfg."""
    sizes = [block.ffn.down.in_features for block in bert.blocks]
    neurons = _check_units(neurons, sizes, "neurons", "prune_ffn")
    for layer, removed in neurons.items():
        ffn = bert.blocks[layer].ffn
        drop = torch.zeros(ffn.down.in_features, dtype=torch.bool)
        drop[removed] = True
        idx = (~drop).nonzero().squeeze(1).to(ffn.down.weight.device)  # (kept,)
        ffn.up = _keep_outputs(ffn.up, idx)
        if ffn.gate is not None:
            ffn.gate = _keep_outputs(ffn.gate, idx)
        ffn.down = _keep_inputs(ffn.down, idx)
    bert.cfg = dataclasses.replace(bert.cfg, layer_d_ff=[block.ffn.down.in_features for block in bert.blocks])
    return bert


def count_units(bert: BertModel) -> dict[str, int]:
    return {"heads": sum(b.attn.n_heads for b in bert.blocks),
            "ffn_neurons": sum(b.ffn.down.in_features for b in bert.blocks)}
