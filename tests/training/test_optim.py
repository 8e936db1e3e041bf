import pytest
import torch
from torch import nn

from encoderlab.training.config import TrainConfig
from encoderlab.training.metrics_log import read_log
from encoderlab.training.optim import build_optimizer, clip_grad_norm, param_groups

from .iris_task import make_trainer


class TinyEncoder(nn.Module):
    """Embedding + its LayerNorm, a custom-named norm, a linear layer and a bare scalar parameter."""

    class MyRMSNorm(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.gain = nn.Parameter(torch.ones(dim))

    def __init__(self) -> None:
        super().__init__()
        self.tok = nn.Embedding(10, 8)
        self.emb_ln = nn.LayerNorm(8)
        self.proj = nn.Linear(8, 8)
        self.final = self.MyRMSNorm(8)
        self.temperature = nn.Parameter(torch.tensor(1.0))
        self.frozen = nn.Linear(8, 8)
        self.frozen.requires_grad_(False)


def test_param_groups_by_module_type_and_ndim():
    model = TinyEncoder()
    decay, no_decay = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert sorted(names[id(p)] for p in decay["params"]) == ["proj.weight", "tok.weight"]
    assert sorted(names[id(p)] for p in no_decay["params"]) == [
        "emb_ln.bias", "emb_ln.weight", "final.gain", "proj.bias", "temperature"]


def test_a_2d_norm_parameter_is_still_not_decayed():
    model = TinyEncoder()
    model.final.gain = nn.Parameter(torch.ones(2, 4))  # ndim 2, but it belongs to a norm module
    decay, _ = param_groups(model, 0.1)
    assert all(p is not model.final.gain for p in decay["params"])


def test_build_adamw_and_sgd():
    model = TinyEncoder()
    adamw = build_optimizer(model, TrainConfig(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1))
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["betas"] == (0.8, 0.9)
    assert [g["weight_decay"] for g in adamw.param_groups] == [0.1, 0.0]
    sgd = build_optimizer(model, TrainConfig(optimizer="sgd", lr=0.01, momentum=0.5))
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.5


def test_clip_grad_norm_returns_the_pre_clip_norm_and_clips():
    params = [nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(4))]
    params[0].grad = torch.tensor([3.0, 0.0, 0.0])
    params[1].grad = torch.tensor([0.0, 4.0, 0.0, 0.0])
    assert float(clip_grad_norm(params, None)) == pytest.approx(5.0)
    assert params[0].grad[0] == 3.0  # no clipping without max_norm
    assert float(clip_grad_norm(params, 1.0)) == pytest.approx(5.0)
    total = torch.cat([p.grad for p in params]).norm()
    assert float(total) == pytest.approx(1.0, rel=1e-5)


def test_clipping_bounds_every_update(iris_cfg):
    """Plain SGD (lr 1, no momentum/decay): each step moves the weights by exactly lr x the clipped gradient."""
    cfg = iris_cfg(optimizer="sgd", lr=1.0, momentum=0.0, weight_decay=0.0, schedule="constant",
                   clip_grad_norm=1e-3, max_steps=10, log_every=1, dropout=0.0, noise=0.0)
    trainer = make_trainer(cfg)
    before = torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])
    trainer.fit()
    after = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    assert float((after - before).norm()) <= 10 * 1e-3 * (1 + 1e-4)
    logged = [r["grad_norm"] for r in read_log(cfg.out_dir) if "grad_norm" in r]
    assert len(logged) == 10 and min(logged) > 1e-3  # the log shows the norm before clipping


def test_gradient_accumulation_matches_a_big_batch(iris_cfg, tmp_path):
    """batch 8 x accum 2 sees the same 16 samples per step as batch 16, so the updates match."""
    common = {"max_steps": 12, "dropout": 0.0, "noise": 0.0, "optimizer": "sgd", "lr": 0.1}
    big = make_trainer(iris_cfg(batch_size=16, out_dir=str(tmp_path / "big"), **common))
    acc = make_trainer(iris_cfg(batch_size=8, grad_accum=2, out_dir=str(tmp_path / "acc"), **common))
    acc.model.load_state_dict(big.model.state_dict())
    big.fit()
    acc.fit()
    for p, q in zip(big.model.parameters(), acc.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def scaled_groups(model: nn.Module) -> list[dict]:
    """The output layer at half the lr of everything else (what layer-wise lr decay does per depth)."""
    out = set(map(id, model.out.parameters()))
    return [{"params": [p for p in model.parameters() if id(p) not in out], "weight_decay": 0.0},
            {"params": list(model.out.parameters()), "weight_decay": 0.0, "lr_scale": 0.5}]


def make_scaled_trainer(cfg):
    from encoderlab.training import Trainer
    from encoderlab.training.seeding import seed_everything

    from .iris_task import IrisMLP, eval_fn, iris_splits, make_collate, make_loss_fn

    train, val = iris_splits()
    seed_everything(cfg.seed)
    return Trainer(cfg, IrisMLP(cfg.hidden, cfg.dropout), train, loss_fn=make_loss_fn(), collate_fn=make_collate(
        cfg.noise), eval_data=val, eval_fn=eval_fn, param_groups=scaled_groups)


def test_a_group_with_lr_scale_half_steps_at_half_the_scheduled_lr_at_every_step(iris_cfg):
    cfg = iris_cfg(max_steps=15, warmup_steps=4, schedule="cosine", log_every=1)
    trainer = make_scaled_trainer(cfg)
    seen: list[list[float]] = []
    step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        seen.append([g["lr"] for g in trainer.optimizer.param_groups])
        return step(*args, **kwargs)

    trainer.optimizer.step = recording_step
    trainer.fit()
    assert len(seen) == 15
    for i, (base, half) in enumerate(seen):
        assert base == pytest.approx(cfg.lr * trainer.schedule(i), rel=1e-12) and base > 0
        assert half == pytest.approx(0.5 * base, rel=1e-12)
    # the log reports the schedule's lr (scale 1), as before
    assert [r["lr"] for r in read_log(cfg.out_dir) if "loss" in r] == pytest.approx([b for b, _ in seen])


def test_lr_scale_survives_an_exact_resume(iris_cfg, tmp_path):
    """Stop at step 10 of 20 (only that checkpoint kept), resume: the same weights, bit for bit."""
    import shutil

    from encoderlab.training.checkpoint import step_dir

    common = {"max_steps": 20, "save_every": 5, "keep_last": 10, "warmup_steps": 3}
    straight = make_scaled_trainer(iris_cfg(out_dir=str(tmp_path / "straight"), **common))
    straight.fit()
    stopped = tmp_path / "stopped"
    shutil.copytree(step_dir(straight.out_dir, 10), step_dir(stopped, 10))
    resumed = make_scaled_trainer(iris_cfg(out_dir=str(stopped), resume=True, **common))
    resumed.fit()
    assert resumed.step == 20 and [g.get("lr_scale", 1.0) for g in resumed.optimizer.param_groups] == [1.0, 0.5]
    for p, q in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_parameter_groups_must_cover_every_trainable_parameter_once():
    from encoderlab.errors import ConfigError

    model = TinyEncoder()
    trainable = [p for p in model.parameters() if p.requires_grad]
    with pytest.raises(ConfigError, match="in no optimizer group"):
        build_optimizer(model, TrainConfig(), [{"params": trainable[:-1]}])
    with pytest.raises(ConfigError, match="in two groups"):
        build_optimizer(model, TrainConfig(), [{"params": trainable}, {"params": trainable[:1]}])
    with pytest.raises(ConfigError, match="lr_scale=0"):
        build_optimizer(model, TrainConfig(), [{"params": trainable, "lr_scale": 0}])
