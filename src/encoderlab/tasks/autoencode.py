"""`train_autoencoder(cfg)`: train an autoencoder or VAE on array/tabular data and measure it as papers do.

    encoderlab autoencode --config configs/mnist-ae.yaml            # MLP AE, 10-d code, vs PCA
    encoderlab autoencode --config configs/mnist-vae.yaml           # VAE, importance-sampled test NLL
    encoderlab autoencode --config configs/shuttle-anomaly.yaml     # anomaly AUROC / AP

One run: load the data (`data.arrays`), optionally keep one normal class for anomaly detection, fill the
model's input shape in from the data, train with the shared Trainer (validation loss every `eval_every`
steps), then score the final model on the test split: per-element MSE on the data's model scale ([0, 1]
for images) and BCE where the decoder is Bernoulli, the importance-sampled NLL for VAEs, the same-size PCA
and mean-sample baselines, and AUROC / AP / thresholded F1 for anomaly runs. Pictures (reconstructions,
prior samples, latent map, loss curves, score histogram) go to OUT_DIR as PNG files; the model goes to
OUT_DIR/final/ with the data's scaling, so `encoderlab encode --model OUT_DIR --input x.npy` embeds new data.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..artifacts.autoencoder import DATA_INFO_FILE, AutoencoderInfo, anomaly_scores, batched, build_model
from ..config import save_config
from ..data.arrays import ArrayData, prepare_arrays
from ..errors import ConfigError
from ..evaluation.anomaly import anomaly_report, best_f1_threshold
from ..files import atomic_write_json
from ..models.autoencoder import (
    AutoencoderConfig,
    autoencoder_loss,
    corrupt,
    reconstruction_error,
    to_data_space,
)
from ..models.vae import VAE
from ..training import TrainConfig, Trainer
from ..training.distributed import unwrap
from ..training.metrics_log import read_log
from ..training.precision import apply_threads
from ..weights import save_weights


@dataclass
class AutoencodeConfig(TrainConfig):
    out_dir: str = "runs/autoencode"
    """Where the run is written (default: a directory of its own per command)."""
    data: str = "mnist"
    """mnist, shuttle, or a .npy / .npz / .csv file (see data.arrays)."""
    model: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    """The architecture; model.input_shape is filled in from the data."""
    image_size: int | None = None
    """Images (a folder or an image file): resize each to image_size x image_size pixels as it is read (bilinear,
    the aspect ratio is not kept); needed when their sizes differ. `encode` and `predict` resize new images the
    same way. null = every image must have the same size."""
    label_column: str = ""
    """.csv data: the label column (default: a column named label, y, target, class or anomaly, if any)."""
    normal_class: int | str | None = None
    """Anomaly detection: train on this label only; every other label is an anomaly (shuttle: 0). A number,
    or a class name: a value of a text label column (normal_class=ok), an image folder's sub-folder."""
    train_limit: int | None = None
    """Use only the first N training samples (quick runs and tests); null = all."""
    eval_limit: int | None = None
    """Use only the first N validation and N test samples; null = all."""

    noise: Literal["none", "gaussian", "masking"] = "none"
    """Denoising autoencoder: corrupt the input with this noise, reconstruct the clean sample."""
    noise_level: float = 0.0
    """Std of the Gaussian noise, or the masking probability."""
    sparsity: float = 0.0
    """Sparse autoencoder: weight of the L1 penalty on the code."""
    binarize: bool = False
    """Dynamic binarisation: each training step draws binary pixels ~ Bernoulli(intensity); val/test are
    binarised once with a fixed seed. The standard protocol for binarised-MNIST likelihoods."""

    beta: float = 1.0
    """VAE: weight of the KL term (beta-VAE, Higgins et al. 2017); 1 = the ELBO."""
    kl_warmup_steps: int = 0
    """VAE: ramp the KL weight linearly from 0 to `beta` over this many steps."""
    objective: Literal["elbo", "iwae"] = "elbo"
    """VAE training objective: the ELBO (analytic KL) or the IWAE bound with `train_samples` samples."""
    train_samples: int = 1
    """VAE: importance samples per training example for objective=iwae."""
    nll_samples: int = 0
    """VAE: importance samples for the test NLL estimate (pythae uses 50, Burda et al. 5000); 0 = skip."""

    baselines: bool = True
    """Also report PCA with latent_dim components and the mean sample on the same test split."""
    plots: bool = True
    """Write reconstructions.png, samples.png (VAE), latent.png, loss.png (and scores.png) to out_dir."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.noise_level < 0 or (self.noise == "masking" and self.noise_level >= 1):
            raise ConfigError(f"noise_level={self.noise_level}: a std must be >= 0 and a masking probability "
                              "in [0, 1)")
        if self.noise != "none" and self.noise_level == 0:
            raise ConfigError(f"noise={self.noise} with noise_level=0 adds no noise; set e.g. noise_level=0.3")
        if self.sparsity < 0:
            raise ConfigError(f"sparsity={self.sparsity} must be >= 0")
        if self.beta <= 0:
            raise ConfigError(f"beta={self.beta} must be positive (1 = the plain ELBO)")
        if self.kl_warmup_steps < 0 or self.train_samples < 1 or self.nll_samples < 0:
            raise ConfigError("kl_warmup_steps and nll_samples must be >= 0, train_samples >= 1")
        if self.image_size is not None and self.image_size < 1:
            raise ConfigError(f"image_size={self.image_size} must be a positive number of pixels, or null")
        for name, value in (("train_limit", self.train_limit), ("eval_limit", self.eval_limit)):
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value} must be at least 1, or null for all samples")
        if self.binarize and (self.model.reconstruction == "mse" or self.model.output == "identity"):
            raise ConfigError("binarize=true gives binary data: use model.reconstruction=bce (a Bernoulli decoder)")
        vae_only = {"kl_warmup_steps": self.kl_warmup_steps != 0, "nll_samples": self.nll_samples != 0,
                    "objective": self.objective != "elbo", "beta": self.beta != 1.0}
        if not self.model.variational and any(vae_only.values()):
            names = ", ".join(k for k, v in vae_only.items() if v)
            raise ConfigError(f"{names} only apply to a VAE; set model.variational=true or remove them")
        if self.model.variational and self.sparsity:
            raise ConfigError("sparsity= is for deterministic autoencoders; a VAE's KL term already "
                              "regularises the code (use beta=)")
        if self.objective == "iwae" and self.train_samples < 2:
            raise ConfigError("objective=iwae needs train_samples >= 2 (k = 1 is the ELBO)")


# ----------------------------------------------------------------------------------------------- data
class Samples(Dataset):
    """A map-style dataset over a float32 tensor of samples (the Trainer's default collate stacks them)."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def prepare_data(cfg: AutoencodeConfig) -> ArrayData:
    """Load, make it one-class if asked, apply the limits and the fixed val/test binarisation."""
    return prepare_arrays(cfg.data, cfg.label_column or None, cfg.normal_class, cfg.train_limit, cfg.eval_limit,
                          cfg.binarize, cfg.image_size)


def with_input_shape(model_cfg: AutoencoderConfig, shape: tuple[int, ...]) -> AutoencoderConfig:
    """The model config with input_shape taken from the data (a set, different shape is an error)."""
    if model_cfg.input_shape and tuple(model_cfg.input_shape) != tuple(shape):
        raise ConfigError(f"model.input_shape={list(model_cfg.input_shape)} but the data's samples have shape "
                          f"{list(shape)}; remove model.input_shape (it is taken from the data)")
    resolved = dataclasses.replace(model_cfg, input_shape=tuple(shape))
    if len(shape) == 1 and resolved.output == "sigmoid":
        # Tables are standardised per column (mean 0, std 1): half the values are negative, which a sigmoid
        # cannot reach and BCE cannot score.
        raise ConfigError(f"model.output=sigmoid / model.reconstruction={resolved.reconstruction} expect data in "
                          "[0, 1], but table columns are standardised (mean 0, std 1); remove both (tables "
                          "default to output=identity, reconstruction=mse)")
    return resolved


# ----------------------------------------------------------------------------------------------- losses
def make_loss_fn(cfg: AutoencodeConfig, current_step):
    """The training loss of one batch, (mean loss, n samples); `current_step()` drives the KL warm-up."""

    def loss_fn(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        if cfg.binarize:
            x = torch.bernoulli(x)  # dynamic binarisation: fresh binary pixels every step
        if not cfg.model.variational:
            return autoencoder_loss(model, x, cfg.noise, cfg.noise_level, cfg.sparsity), len(x)
        beta = kl_weight(cfg, current_step())
        x_in = corrupt(x, cfg.noise, cfg.noise_level)
        k = cfg.train_samples if cfg.objective == "iwae" else 1
        return -model(x, beta=beta, k=k, x_input=x_in).mean(), len(x)  # through forward: DDP-safe

    return loss_fn


def kl_weight(cfg: AutoencodeConfig, step: int) -> float:
    if cfg.kl_warmup_steps == 0:
        return cfg.beta
    return cfg.beta * min(1.0, (step + 1) / cfg.kl_warmup_steps)


def eval_fn(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, int]]:
    """Validation metrics: loss (reconstruction loss, or negative ELBO in nats for a VAE), per-element MSE/BCE."""
    model = unwrap(model)
    n = len(x)
    if isinstance(model, VAE):
        terms = model.elbo(x)
        logits = terms.logits
        out = {"loss": (-terms.elbo.mean(), n), "kl": (terms.kl.mean(), n)}
    else:
        logits = model(x).logits
        out = {"loss": (reconstruction_error(logits, x, model.cfg).mean(), n)}
    out["mse"] = (reconstruction_error(logits, x, model.cfg, "mse").mean(), n)
    if model.cfg.output == "sigmoid":
        out["bce"] = (reconstruction_error(logits, x, model.cfg, "bce").mean(), n)
    return out


# ----------------------------------------------------------------------------------------------- scoring
EXACT_PCA_MAX = 1024
"""Exact PCA up to this many dimensions (or samples); beyond both, randomized subspace iteration."""


def top_components(a: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """(D, k) orthonormal top-k principal directions of the centred rows of `a` (N, D), largest first.

    Exact from the D x D covariance when D is small (MNIST: 784), or from the N x N Gram matrix when N is
    small (a few hundred large images); otherwise randomized subspace iteration (Halko, Martinsson & Tropp,
    2011, Alg. 4.4) with 6 power steps, so 50,000 RGB 64x64 images never build a 12,288^2 covariance."""
    n, d = a.shape
    if d <= EXACT_PCA_MAX:
        _, vectors = np.linalg.eigh(a.T @ a)  # (D, D), eigenvalues ascending
        return vectors[:, ::-1][:, :k]
    k = min(k, n)  # past the rank of the data: nothing more to find
    if n <= EXACT_PCA_MAX:
        values, u = np.linalg.eigh(a @ a.T)  # (N, N): the same non-zero spectrum, left singular vectors
        values, u = values[::-1][:k], u[:, ::-1][:, :k]
        return (a.T @ u) / np.sqrt(np.maximum(values, 1e-300))  # v_i = A^T u_i / sigma_i
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(a @ rng.standard_normal((d, k + 10)))  # (N, k + 10)
    for _ in range(6):
        q, _ = np.linalg.qr(a.T @ q)
        q, _ = np.linalg.qr(a @ q)
    _, _, vt = np.linalg.svd(q.T @ a, full_matrices=False)  # (k + 10, D)
    return vt[:k].T


def pca_reconstruction_mse(train: np.ndarray, test: np.ndarray, n_components: int) -> float:
    """Per-element test MSE of PCA with `n_components`, fitted on `train` (the linear-autoencoder optimum)."""
    a, b = train.reshape(len(train), -1).astype(np.float64), test.reshape(len(test), -1).astype(np.float64)
    mean = a.mean(0)
    top = top_components(a - mean, n_components)  # (D, k)
    recon = (b - mean) @ top @ top.T + mean
    return float(np.mean((recon - b) ** 2))


def test_metrics(cfg: AutoencodeConfig, model: nn.Module, data: ArrayData) -> dict[str, float]:
    """Test-split metrics of the final model, plus baselines and anomaly scores."""
    model.eval()
    x = data.test.x
    logits = batched(lambda xb: model.decoder(model.encode(xb)), x)
    mean = to_data_space(torch.from_numpy(logits), model.cfg).numpy()
    metrics = {"test_mse": float(np.mean((mean - x) ** 2)), "test_samples": len(x)}
    if model.cfg.output == "sigmoid":
        bce = F.binary_cross_entropy_with_logits(torch.from_numpy(logits), torch.from_numpy(x))
        metrics["test_bce"] = float(bce)
    if isinstance(model, VAE):
        metrics["test_neg_elbo"] = float(-batched(lambda xb: model.elbo(xb).elbo, x).mean())
        if cfg.nll_samples:
            torch.manual_seed(cfg.seed)
            log_px = batched(lambda xb: model.importance_log_likelihood(xb, cfg.nll_samples), x, 500)
            metrics["test_nll"] = float(-log_px.mean())
            metrics["nll_samples"] = cfg.nll_samples
    if cfg.baselines:
        metrics["pca_test_mse"] = pca_reconstruction_mse(data.train.x, x, model.cfg.latent_dim)
        metrics["mean_test_mse"] = float(np.mean((data.train.x.mean(0) - x) ** 2))
    if cfg.normal_class is not None:
        val_scores, test_scores = anomaly_scores(model, data.val.x), anomaly_scores(model, x)
        metrics |= anomaly_report(data.val.y, val_scores, data.test.y, test_scores)
    return metrics


# ----------------------------------------------------------------------------------------------- pictures
def write_plots(cfg: AutoencodeConfig, model: nn.Module, data: ArrayData, out_dir: Path) -> list[str]:
    from ..report import autoencoder_plots as plots

    model.eval()
    written = []
    x = data.test.x[:20]
    recon = batched(model.reconstruct, x)
    flat = data.kind == "tabular"
    written.append(plots.plot_reconstructions(x if not flat else x.reshape(len(x), -1),
                                              recon if not flat else recon.reshape(len(x), -1),
                                              out_dir / "reconstructions.png"))
    if isinstance(model, VAE) and data.kind == "image":
        generator = torch.Generator().manual_seed(cfg.seed)
        with torch.no_grad():
            samples = model.sample(50, generator=generator).numpy()
        written.append(plots.plot_samples(samples, out_dir / "samples.png"))
    n = min(len(data.test), 5000)
    codes = batched(model.encode, data.test.x[:n])
    written.append(plots.plot_latent(codes, data.test.y[:n] if data.test.y is not None else None,
                                     out_dir / "latent.png", title=f"{data.name} test codes (d={codes.shape[1]})"))
    log_file = out_dir / "log.jsonl"
    if log_file.exists():
        written.append(plots.plot_loss_curves(read_log(out_dir), out_dir / "loss.png"))
    if cfg.normal_class is not None:
        val_scores, test_scores = anomaly_scores(model, data.val.x), anomaly_scores(model, data.test.x)
        threshold = best_f1_threshold(data.val.y, val_scores).threshold
        written.append(plots.plot_score_histogram(test_scores, data.test.y, threshold, out_dir / "scores.png"))
    return [str(Path(p).name) for p in written]


# ----------------------------------------------------------------------------------------------- the task
def train_autoencoder(cfg: AutoencodeConfig) -> dict[str, float]:
    apply_threads(cfg.threads)
    data = prepare_data(cfg)
    cfg = dataclasses.replace(cfg, model=with_input_shape(cfg.model, data.sample_shape))
    if cfg.model.latent_dim >= cfg.model.n_inputs:  # legitimate (over-complete sparse/denoising AEs), but rarely meant
        print(f"warning: model.latent_dim={cfg.model.latent_dim} >= the {cfg.model.n_inputs} values of a "
              f"sample: the code does not compress (PCA with as many components reconstructs exactly); set "
              f"model.latent_dim below {cfg.model.n_inputs} to learn a compressed code", file=sys.stderr)
    model = build_model(cfg.model)
    eval_x = data.val.x if cfg.normal_class is None else data.val.x[data.val.y == 0]  # validate on normal data

    def save_final(trained: nn.Module, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        save_weights(directory / "model.safetensors", trained.state_dict())
        save_config(cfg, directory / "config.yaml")
        atomic_write_json(directory / DATA_INFO_FILE, AutoencoderInfo.of(data).to_dict())

    trainer: Trainer | None = None
    trainer = Trainer(cfg, model, Samples(data.train.x), loss_fn=make_loss_fn(cfg, lambda: trainer.step),
                      eval_data=Samples(eval_x), eval_fn=eval_fn, save_final=save_final)
    result = trainer.fit()
    metrics = dict(result.metrics)
    model = unwrap(trainer.model).cpu()
    metrics |= test_metrics(cfg, model, data)
    metrics["train_samples"] = len(data.train)
    metrics["data_scaling"] = data.scaling.kind  # how raw values were mapped (details in final/autoencoder.json)
    if cfg.plots:
        metrics["plots"] = write_plots(cfg, model, data, Path(cfg.out_dir))
    return metrics
