"""Image towers (small CNN, ViT on our blocks) and the CLIP-style dual encoder."""

import pytest
import torch

from encoderlab.errors import ConfigError
from encoderlab.models.bert import BertConfig, BertModel
from encoderlab.models.dual_encoder import DualEncoder, DualEncoderConfig, contrastive_loss
from encoderlab.models.image import ImageConfig, ImageEncoder
from tasks.finetune_fixtures import one_thread  # noqa: F401  (tests/ is on the path: its conftest.py)


@pytest.mark.parametrize("kind", ["cnn", "vit"])
def test_image_encoder_shapes_and_gradients(kind):
    torch.manual_seed(0)
    enc = ImageEncoder(ImageConfig(kind=kind, image_size=16, d_model=32, n_layers=2, n_heads=2, d_ff=64,
                                   cnn_channels=[8, 16]))
    x = torch.rand(3, 3, 16, 16)
    out = enc(x)
    assert out.shape == (3, 32)
    out.square().sum().backward()
    first = next(p for p in enc.parameters() if p.ndim == 4)  # the first convolution / patch embedding
    assert first.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"expected \(B, 3, 16, 16\)"):
        enc(torch.rand(2, 3, 32, 32))


def test_vit_sees_where_things_are():
    """Positions matter: the same patches in another order give another vector."""
    torch.manual_seed(0)
    enc = ImageEncoder(ImageConfig(kind="vit", image_size=8, patch_size=4, d_model=16, n_layers=1, n_heads=2)).eval()
    x = torch.rand(1, 3, 8, 8)
    swapped = torch.cat([x[..., 4:, :], x[..., :4, :]], dim=2)  # top and bottom patch rows exchanged
    assert (enc(x) - enc(swapped)).abs().max() > 1e-4


def test_image_config_errors():
    with pytest.raises(ConfigError, match="not divisible by patch_size"):
        ImageConfig(kind="vit", image_size=30, patch_size=4)
    with pytest.raises(ConfigError, match="halve"):
        ImageConfig(kind="cnn", image_size=4, cnn_channels=[8, 8, 8])


def test_dual_encoder_contrastive_step_improves_matching():
    torch.manual_seed(0)
    text = BertModel(BertConfig(vocab_size=30, d_model=16, n_layers=1, n_heads=2, d_ff=32, max_positions=8,
                                pooler=False))
    model = DualEncoder(DualEncoderConfig(image=ImageConfig(kind="cnn", image_size=8, d_model=16, cnn_channels=[8]),
                                          d_embed=16), text)
    assert not any(p.requires_grad for p in model.text.parameters())  # locked text tower by default
    pixels, ids = torch.rand(6, 3, 8, 8), torch.randint(1, 30, (6, 5))
    mask = torch.ones_like(ids)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    first = contrastive_loss(model(pixels, ids, mask))
    for _ in range(30):
        loss = contrastive_loss(model(pixels, ids, mask))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first.item() * 0.5
    images, texts = model.encode_image(pixels), model.encode_text(ids, mask)
    torch.testing.assert_close(images.norm(dim=-1), torch.ones(6))
    assert (images @ texts.T).argmax(1).tolist() == list(range(6))  # every image finds its own text
    model.eval()  # precomputed features of the locked tower = the tower run inside forward
    torch.testing.assert_close(model(pixels, ids, mask), model(pixels, text_features=model.text_features(ids, mask)))
