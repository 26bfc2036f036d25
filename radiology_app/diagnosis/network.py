"""The fused image+text network (torch; import lazily).

Image: a small 3-D convolutional encoder (MONAI-style blocks, ``blocks.py``) on the 4-channel crop gives a
4x4x4 grid of image tokens.
Text: the backbone's token states (projected) plus one token made from the bilingual cue vector.
Fusion: cross-attention image->text and text->image; three heads (image, text, joint) over the classes.
A modality router (pooled features + quality signals) gives each head a gate in (0, 1), trained to predict
how reliable that head is for the case (its probability of the true class above chance); the fused logits
are the gated sum of the heads' logits (a weighted product of experts), and the normalised gates are the
modality weights. A temperature (fitted after training) calibrates the result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from radiology_app.diagnosis.blocks import Convolution, ResidualUnit
from radiology_app.diagnosis.classes import N_CLASSES
from radiology_app.diagnosis.crops import N_IMAGE_CHANNELS
from radiology_app.diagnosis.cues import N_CUES

#: Quality-signal vector: noise/100 HU, slice thickness/5 mm, thickness known, note informativeness,
#: note tokens/96, note present.
N_QUALITY = 6
MODALITIES = ("image", "text", "joint")


@dataclass(frozen=True)
class NetConfig:
    """Architecture settings stored with the weights."""

    text_hidden: int = 384
    d_model: int = 64
    n_heads: int = 4
    n_classes: int = N_CLASSES
    n_cues: int = N_CUES
    n_quality: int = N_QUALITY
    channels: tuple[int, int, int, int] = (16, 32, 48, 64)
    n_radiomics: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> NetConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        return NetConfig(**d)


class ImageEncoder(nn.Module):
    """Convolution blocks (`blocks.py`): 32^3 crop -> 4^3 tokens of ``d_model`` features."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        c1, c2, c3, c4 = cfg.channels
        self.net = nn.Sequential(
            Convolution(3, N_IMAGE_CHANNELS, c1, strides=2, kernel_size=3),
            ResidualUnit(3, c1, c2, strides=2, kernel_size=3, subunits=2),
            Convolution(3, c2, c3, strides=1, kernel_size=3),
            ResidualUnit(3, c3, c4, strides=2, kernel_size=3, subunits=2),
        )
        self.proj = nn.Linear(c4, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(1, 64, cfg.d_model))
        self.rad = (
            nn.Sequential(
                nn.Linear(cfg.n_radiomics, cfg.d_model), nn.GELU(), nn.Linear(cfg.d_model, cfg.d_model)
            )
            if cfg.n_radiomics
            else None
        )

    def forward(self, x: torch.Tensor, radiomics: torch.Tensor) -> torch.Tensor:
        f = self.net(x)  # [B, C, 4, 4, 4]
        tokens = f.flatten(2).transpose(1, 2)  # [B, 64, C]
        out: torch.Tensor = self.proj(tokens) + self.pos
        if self.rad is not None:  # one more token from the shape/attenuation descriptors
            out = torch.cat([self.rad(radiomics).unsqueeze(1), out], dim=1)
        return out


class AttnPool(nn.Module):
    """Attention pooling with a learned query; returns the pooled vector and the token weights."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(d) * 0.02)
        self.key = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.key(x) @ self.query / (x.shape[-1] ** 0.5)
        scores = scores.masked_fill(mask < 0.5, -1e4)
        w = torch.softmax(scores, dim=-1)
        return (w.unsqueeze(-1) * x).sum(1), w


class MHA(nn.Module):
    """Multi-head attention with shapes taken from the tensors (exports to ONNX with dynamic axes)."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.h = heads
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)

    def forward(
        self, x: torch.Tensor, ctx: torch.Tensor, ctx_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, lq, d = x.shape
        lk = ctx.shape[1]
        q = self.q(x).reshape(b, lq, self.h, -1).transpose(1, 2)
        k = self.k(ctx).reshape(b, lk, self.h, -1).transpose(1, 2)
        v = self.v(ctx).reshape(b, lk, self.h, -1).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)
        if ctx_mask is not None:
            scores = scores.masked_fill(ctx_mask[:, None, None, :] < 0.5, -1e4)
        att = torch.softmax(scores, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, lq, d)
        return self.o(y)  # type: ignore[no-any-return]


class TextBlock(nn.Module):
    """Pre-norm transformer block over the text tokens."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.n1 = nn.LayerNorm(d)
        self.att = MHA(d, heads)
        self.n2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(0.1), nn.Linear(2 * d, d))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.n1(x)
        x = x + self.att(h, h, mask)
        return x + self.ff(self.n2(x))  # type: ignore[no-any-return]


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.GELU(), nn.Dropout(0.1), nn.Linear(h, o))


class FusedNet(nn.Module):
    """The fused differential-diagnosis network."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.image = ImageEncoder(cfg)
        self.text_proj = nn.Sequential(nn.LayerNorm(cfg.text_hidden), nn.Linear(cfg.text_hidden, d))
        self.cue_proj = nn.Sequential(nn.Linear(cfg.n_cues, d), nn.GELU(), nn.Linear(d, d))
        self.text_self = TextBlock(d, cfg.n_heads)
        self.i2t = MHA(d, cfg.n_heads)
        self.t2i = MHA(d, cfg.n_heads)
        self.norm_i = nn.LayerNorm(d)
        self.norm_t = nn.LayerNorm(d)
        self.pool_t = AttnPool(d)
        self.pool_tj = AttnPool(d)
        self.head_image = _mlp(d, d, cfg.n_classes)
        self.head_text = _mlp(d, d, cfg.n_classes)
        self.head_joint = _mlp(2 * d, d, cfg.n_classes)
        self.router = _mlp(2 * d + cfg.n_quality, 32, len(MODALITIES))
        self.con_i = nn.Linear(d, 32)
        self.con_t = nn.Linear(d, 32)
        self.register_buffer("temperature", torch.ones(()))

    def forward(
        self,
        image: torch.Tensor,
        text_states: torch.Tensor,
        text_mask: torch.Tensor,
        cues: torch.Tensor,
        quality: torch.Tensor,
        radiomics: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Run the network.

        Parameters
        ----------
        image
            ``[B, 4, 32, 32, 32]`` channels of :func:`~radiology_app.diagnosis.crops.image_channels`.
        text_states
            ``[B, L, text_hidden]`` backbone token states.
        text_mask
            ``[B, L]`` 1 for real tokens (all 0 for an empty note).
        cues
            ``[B, n_cues]`` cue vectors.
        quality
            ``[B, n_quality]`` quality signals.

        Returns
        -------
        dict
            ``log_probs`` (calibrated, [B, C]), ``log_mix`` (uncalibrated), ``weights`` ([B, 3]
            image/text/joint, normalised gates), ``gates``,
            ``logits_image``/``logits_text``/``logits_joint``, ``z_image``/``z_text`` (contrastive
            embeddings), ``text_attention`` ([B, L] weights of the note tokens, cue token excluded).
        """
        if radiomics is None:
            radiomics = torch.zeros(image.shape[0], max(1, self.cfg.n_radiomics))
        return self.fuse(self.image(image, radiomics), text_states, text_mask, cues, quality)

    def fuse(
        self,
        img: torch.Tensor,
        text_states: torch.Tensor,
        text_mask: torch.Tensor,
        cues: torch.Tensor,
        quality: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Everything after the image encoder: ``img`` are its tokens (``self.image(image, radiomics)``,
        ``[B, 64 (+1), d]``); the other arguments and the result are those of :meth:`forward`. Fine-tuning
        with the image encoder frozen computes the tokens once and calls this at every step."""
        cue_tok = self.cue_proj(cues).unsqueeze(1)  # [B, 1, d]
        txt = torch.cat([cue_tok, self.text_proj(text_states)], dim=1)
        tmask = torch.cat([torch.ones_like(text_mask[:, :1]), text_mask], dim=1)
        txt = self.text_self(txt, tmask)

        img_feat = img.mean(1)
        txt_feat, attn = self.pool_t(txt, tmask)

        img_x = self.norm_i(img + self.i2t(img, txt, tmask))
        t_att = self.t2i(txt, img)
        txt_x = self.norm_t(txt + t_att)
        tj, _ = self.pool_tj(txt_x, tmask)
        joint = torch.cat([img_x.mean(1), tj], dim=-1)

        li = self.head_image(img_feat)
        lt = self.head_text(txt_feat)
        lj = self.head_joint(joint)
        gates = torch.sigmoid(self.router(torch.cat([img_feat, txt_feat, quality], dim=-1)))  # [B, 3]
        fused = gates[:, 0:1] * li + gates[:, 1:2] * lt + gates[:, 2:3] * lj
        mix = F.log_softmax(fused, dim=-1)
        temperature: torch.Tensor = self.temperature  # type: ignore[assignment]
        calibrated = F.log_softmax(mix / temperature, dim=-1)
        return {
            "log_probs": calibrated,
            "log_mix": mix,
            "weights": gates / gates.sum(-1, keepdim=True),
            "gates": gates,
            "logits_image": li,
            "logits_text": lt,
            "logits_joint": lj,
            "z_image": F.normalize(self.con_i(img_feat), dim=-1),
            "z_text": F.normalize(self.con_t(txt_feat), dim=-1),
            "text_attention": attn[:, 1:],
        }


class OnnxWrapper(nn.Module):
    """Exports the outputs the inference backends need: probabilities, router weights, token attention."""

    def __init__(self, net: FusedNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self,
        image: torch.Tensor,
        text_states: torch.Tensor,
        text_mask: torch.Tensor,
        cues: torch.Tensor,
        quality: torch.Tensor,
        radiomics: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.net(image, text_states, text_mask, cues, quality, radiomics)
        return out["log_probs"].exp(), out["weights"], out["text_attention"]
