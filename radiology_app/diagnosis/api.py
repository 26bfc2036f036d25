"""Public API of the fused image+text differential-diagnosis model.

Importing this module does not import torch; :func:`load_diagnosis_model` does (or only onnxruntime
with the ``"onnxruntime"`` backend once the ONNX files exist). Results are AI suggestions for a clinician
to review.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radiology_app.core.config import Settings, app_paths, load_settings
from radiology_app.core.errors import ModelError, ModelIntegrityError
from radiology_app.core.progress import CancelToken, ProgressCallback, check_cancel, report
from radiology_app.diagnosis.classes import CLASS_NAMES, MALIGNANT_MASK
from radiology_app.diagnosis.crops import (
    CROP_SHAPE,
    CROP_SPACING_MM,
    estimate_noise_hu,
    extract_crop,
    image_channels,
    radiomics,
)
from radiology_app.diagnosis.cues import extract_cues, with_facts
from radiology_app.diagnosis.features import quality_vector
from radiology_app.diagnosis.weights import (
    FUSED_CARD,
    FUSED_WEIGHTS,
    read_metadata,
    sha256_file,
    verify_weights,
)

__all__ = [
    "DiagnosisInput",
    "DiagnosisModel",
    "Differential",
    "EvidencePhrase",
    "ModelInfo",
    "extract_crop",
    "load_diagnosis_model",
]

log = logging.getLogger(__name__)
MODEL_NAME = "fused-differential"


@dataclass(frozen=True)
class DiagnosisInput:
    """One nodule for the model.

    Attributes
    ----------
    crop_hu
        Crop ``[z, y, x]`` in HU (float32), ideally from :func:`extract_crop`; other crops are resampled
        to the model's 40 mm / 1.25 mm grid around their centre.
    crop_mask
        Nodule mask of the crop (uint8, non-zero inside).
    spacing_zyx_mm
        Voxel spacing of the crop, mm.
    note_text
        The clinical note (English or Chinese; empty when there is none).
    slice_thickness_mm
        Reconstructed slice thickness of the series, mm, if known.
    noise_hu
        Image noise in HU, if known (otherwise estimated from the crop).
    facts
        Patient facts read from the note in context (CLI-contract names -> values; only what the note
        affirms or denies about the patient). They enter the model as structured input and replace the
        lexicon's own reading of those facts; ``None`` keeps the lexicon's.
    """

    crop_hu: npt.NDArray[np.floating]
    crop_mask: npt.NDArray[np.generic]
    spacing_zyx_mm: tuple[float, float, float] = (CROP_SPACING_MM,) * 3
    note_text: str = ""
    slice_thickness_mm: float | None = None
    noise_hu: float | None = None
    facts: Mapping[str, object] | None = None


@dataclass(frozen=True)
class EvidencePhrase:
    """A note phrase that weighed in the text branch: ``text``, ``span`` (chars), ``weight``."""

    text: str
    span: tuple[int, int]
    weight: float


@dataclass(frozen=True)
class Differential:
    """The model's answer for one nodule.

    Attributes
    ----------
    ranked
        ``(diagnosis, probability)`` for every class, most likely first (calibrated; sums to 1).
    malignancy_probability
        Sum of the malignant classes' probabilities.
    modality_weights
        Router weights ``{"image", "text", "joint"}`` (sum to 1).
    evidence
        Note phrases that weighed most, strongest first.
    saliency
        Image saliency (float32 in [0, 1], shaped like the input crop), or ``None`` (ONNX backend).
    lidc_malignancy
        Malignancy probability of the 2-D image branch trained on real LIDC crops (``None`` when it is
        not loaded).
    """

    ranked: tuple[tuple[str, float], ...]
    malignancy_probability: float
    modality_weights: dict[str, float]
    evidence: tuple[EvidencePhrase, ...] = ()
    saliency: npt.NDArray[np.float32] | None = field(default=None, compare=False)
    lidc_malignancy: float | None = None

    @property
    def top(self) -> str:
        """Most likely diagnosis."""
        return self.ranked[0][0]


@dataclass(frozen=True)
class ModelInfo:
    """Name, version and SHA-256 of a model used for a result."""

    name: str
    version: str
    sha256: str


_CLAUSE = re.compile(r"[^.;:\n。；，,!?！？]+")


def _on_crop_grid(inp: DiagnosisInput) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8], bool]:
    hu = np.asarray(inp.crop_hu, dtype=np.float32)
    mask = np.asarray(inp.crop_mask)
    if hu.ndim != 3:
        raise ModelError(f"crop must be 3-D [z, y, x], got shape {hu.shape}")
    if mask.shape != hu.shape:
        raise ModelError(f"crop mask shape {mask.shape} differs from crop shape {hu.shape}")
    if hu.shape == CROP_SHAPE and np.allclose(inp.spacing_zyx_mm, CROP_SPACING_MM, atol=1e-3):
        return hu, (mask > 0).astype(np.uint8), False
    centre = tuple((s - 1) / 2.0 for s in hu.shape)
    h, m, _ = extract_crop(hu, inp.spacing_zyx_mm, mask, (centre[0], centre[1], centre[2]))
    return h, m, True


def _evidence(
    note: str, attention: npt.NDArray[np.floating], offsets: npt.NDArray[np.integer], top_k: int = 3
) -> tuple[EvidencePhrase, ...]:
    if not note.strip():
        return ()
    token_w = np.asarray(attention, dtype=np.float64)
    n = min(len(token_w), len(offsets))
    phrases = []
    for m in _CLAUSE.finditer(note):
        text = m.group(0).strip()
        if not text:
            continue
        s = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        w = 0.0
        for t in range(n):
            a, b = int(offsets[t][0]), int(offsets[t][1])
            if b > a and a >= m.start() and b <= m.end():
                w += float(token_w[t])
        phrases.append(EvidencePhrase(text, (s, s + len(text)), w))
    total = sum(p.weight for p in phrases) or 1.0
    phrases = [EvidencePhrase(p.text, p.span, round(p.weight / total, 4)) for p in phrases]
    phrases.sort(key=lambda p: -p.weight)
    return tuple(p for p in phrases[:top_k] if p.weight > 0)


class DiagnosisModel:
    """A loaded fused model (PyTorch or ONNX Runtime backend). Use :func:`load_diagnosis_model`."""

    def __init__(
        self,
        *,
        net: Any,
        backbone: Any,
        backend: str,
        infos: list[ModelInfo],
        onnx_runner: Any = None,
        saliency: bool = True,
        lidc: Any = None,
    ) -> None:
        self._lidc = lidc
        self._net = net
        self._backbone = backbone
        self.backend = backend
        self._infos = infos
        self._onnx = onnx_runner
        self._saliency = saliency

    def model_info(self) -> list[ModelInfo]:
        """The models behind the results (fused weights, text backbone, adapter if any)."""
        return list(self._infos)

    def _prepare(self, inputs: Sequence[DiagnosisInput]) -> dict[str, Any]:
        imgs, quals, cues, resampled, rads, crops = [], [], [], [], [], []
        for inp in inputs:
            hu, mask, rs = _on_crop_grid(inp)
            crops.append((hu, mask))
            resampled.append(rs)
            imgs.append(image_channels(hu, mask))
            rads.append(radiomics(hu, mask))
            note = inp.note_text or ""
            nc = extract_cues(note)
            cues.append(nc.vector if inp.facts is None else with_facts(nc.vector, inp.facts))
            noise = inp.noise_hu if inp.noise_hu is not None else estimate_noise_hu(hu)
            quals.append((noise, inp.slice_thickness_mm, nc, bool(note.strip())))
        return {
            "images": np.stack(imgs),
            # Cues added to the lexicon later are appended, so weights trained with fewer read the prefix.
            "cues": np.stack(cues)[:, : self._net.cfg.n_cues],
            "quals": quals,
            "resampled": resampled,
            "radiomics": np.stack(rads),
            "crops": crops,
        }

    def predict(
        self,
        inputs: Sequence[DiagnosisInput],
        *,
        on_progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        batch_size: int = 16,
    ) -> list[Differential]:
        """Ranked differentials for nodules.

        Parameters
        ----------
        inputs
            One :class:`DiagnosisInput` per nodule.
        on_progress, cancel
            Progress (unit: nodules) and cancellation.

        Returns
        -------
        list of Differential
            In the order of ``inputs``.

        Raises
        ------
        ModelError
            If an input is malformed.
        OperationCancelled
            When ``cancel`` is set.
        """
        results: list[Differential] = []
        for s in range(0, len(inputs), batch_size):
            check_cancel(cancel)
            chunk = list(inputs[s : s + batch_size])
            results.extend(self._predict_batch(chunk))
            report(on_progress, len(results), len(inputs), "nodules", "differential diagnosis")
        return results

    def _predict_batch(self, inputs: list[DiagnosisInput]) -> list[Differential]:
        prep = self._prepare(inputs)
        notes = [i.note_text or "" for i in inputs]
        if self.backend == "onnxruntime":
            probs, weights, attn, offsets = self._onnx.run(prep, notes)
            sal = None
        else:
            probs, weights, attn, offsets, sal = self._run_torch(prep, notes)
        lidc: list[float | None] = [None] * len(inputs)
        if self._lidc is not None:
            lidc = self._lidc.malignancy([(hu, mask, (CROP_SPACING_MM,) * 3) for hu, mask in prep["crops"]])
        out = []
        for k, inp in enumerate(inputs):
            p = np.asarray(probs[k], dtype=np.float64)
            order = np.argsort(-p)
            ranked = tuple((CLASS_NAMES[int(j)], float(p[j])) for j in order)
            mal = float(p[np.asarray(MALIGNANT_MASK)].sum())
            w = {"image": float(weights[k][0]), "text": float(weights[k][1]), "joint": float(weights[k][2])}
            ev = _evidence(notes[k], attn[k], offsets[k])
            smap = None
            if sal is not None:
                smap = sal[k]
                if prep["resampled"][k]:
                    from scipy import ndimage

                    shape = np.asarray(inp.crop_hu).shape
                    smap = ndimage.zoom(
                        smap, [a / b for a, b in zip(shape, smap.shape, strict=True)], order=1
                    )
                smap = np.asarray(smap, dtype=np.float32)
            out.append(Differential(ranked, mal, w, ev, smap, lidc[k]))
        return out

    def _run_torch(self, prep: dict[str, Any], notes: list[str]) -> tuple[Any, Any, Any, Any, Any]:
        import torch

        # the nodules of one study share its note: encode each distinct note once
        distinct = list(dict.fromkeys(notes))
        row = [distinct.index(t) for t in notes]
        states, tmask, offsets = self._backbone.encode(distinct)
        states, tmask, offsets = states[row], tmask[row].clone(), offsets[row]
        for i, t in enumerate(notes):
            if not t.strip():
                tmask[i] = 0
        qual = np.stack(
            [
                quality_vector(n, th, nc, int(tmask[i].sum()), present)
                for i, (n, th, nc, present) in enumerate(prep["quals"])
            ]
        )
        image = torch.from_numpy(prep["images"]).requires_grad_(self._saliency)
        ctx = torch.enable_grad() if self._saliency else torch.no_grad()
        with ctx:
            out = self._net(
                image,
                states,
                tmask,
                torch.from_numpy(prep["cues"]),
                torch.from_numpy(qual),
                torch.from_numpy(prep["radiomics"]),
            )
            lp = out["log_probs"]
            sal = None
            if self._saliency:
                top = lp.argmax(1)
                lp.gather(1, top[:, None]).sum().backward()
                g = (image.grad * image).abs().sum(1).detach().numpy()  # type: ignore[operator]
                from scipy import ndimage

                g = np.stack([ndimage.gaussian_filter(x, 1.0) for x in g])
                g /= g.reshape(len(g), -1).max(1).reshape(-1, 1, 1, 1) + 1e-12
                sal = g.astype(np.float32)
        return (
            lp.detach().exp().numpy(),
            out["weights"].detach().numpy(),
            out["text_attention"].detach().numpy(),
            offsets,
            sal,
        )


def load_fused_net(weights: Path, card: Path) -> tuple[Any, dict[str, Any], str]:
    """Verify and load fused weights: ``(FusedNet in eval mode, metadata, sha256)``.

    Raises
    ------
    ModelError, ModelIntegrityError
        Missing files, hash mismatch, or weights that do not fit the network.
    """
    sha = verify_weights(weights, card)
    meta = read_metadata(weights)
    from safetensors.torch import load_file

    from radiology_app.diagnosis.network import FusedNet, NetConfig

    if "net" not in meta:
        raise ModelError(f"{weights}: metadata lacks the network configuration")
    net = FusedNet(NetConfig.from_dict(meta["net"]))
    try:
        net.load_state_dict(load_file(str(weights)))
    except RuntimeError as exc:
        raise ModelError(f"{weights}: weights do not fit the network ({exc})") from exc
    net.eval()
    return net, meta, sha


def load_diagnosis_model(
    settings: Settings | None = None,
    *,
    weights: Path | None = None,
    card: Path | None = None,
    saliency: bool = True,
    with_lidc: bool = True,
) -> DiagnosisModel:
    """Load the fused model, checking every weights file's SHA-256 against its model card.

    Parameters
    ----------
    settings
        Backend (``inference_backend``), text backbone folder (``text_backbone_dir``) and site adapter
        (``adapter_dir``); defaults to the saved settings.
    weights, card
        Override the bundled ``resources/models/fused_dx.safetensors`` and its card (tests, training).
    saliency
        Compute image saliency maps (PyTorch backend only).
    with_lidc
        Also load the 2-D image branch trained on real LIDC crops (its malignancy reading joins the
        product's malignancy probability).

    Raises
    ------
    ModelError
        Missing or unusable weights, a backbone that does not match the one the weights were trained with,
        an unknown backend.
    ModelIntegrityError
        A SHA-256 mismatch.
    """
    settings = settings or load_settings()
    backend = settings.inference_backend or "pytorch"
    if backend not in ("pytorch", "onnxruntime"):
        raise ModelError(f"unknown inference backend {backend!r} (use 'pytorch' or 'onnxruntime')")
    weights = weights or FUSED_WEIGHTS
    card = card or FUSED_CARD
    net, meta, sha = load_fused_net(weights, card)
    infos = [ModelInfo(MODEL_NAME, str(meta.get("version", "?")), sha)]

    adapter = Path(settings.adapter_dir) if settings.adapter_dir else None
    if adapter is not None:
        net, adapter_meta, adapter_sha = load_adapter_heads(adapter, meta, sha)
        infos.append(ModelInfo("site-adapter", str(adapter_meta.get("version", adapter.name)), adapter_sha))

    from radiology_app.diagnosis.text import load_backbone

    backbone = load_backbone(settings.text_backbone_dir or None, adapter / "lora" if adapter else None)
    expected = meta.get("backbone", {})
    if int(expected.get("hidden_size", backbone.hidden_size)) != backbone.hidden_size or (
        expected.get("name") and expected["name"] != backbone.directory.name
    ):
        raise ModelError(
            f"{weights}: trained with text backbone {expected.get('name')} "
            f"(hidden {expected.get('hidden_size')}), but {backbone.directory} is configured; "
            "retrain with `radiology-app train-diagnosis --backbone DIR`"
        )
    bb_file = backbone.directory / "model.safetensors"
    infos.append(
        ModelInfo(
            f"text-backbone:{backbone.directory.name}",
            str(expected.get("name", "")),
            sha256_file(bb_file) if bb_file.exists() else "",
        )
    )
    lidc = None
    if with_lidc and weights == FUSED_WEIGHTS:
        from radiology_app.diagnosis.lidc import load_lidc_branch

        lidc = load_lidc_branch()
        infos.append(ModelInfo("lidc-image-branch", "1.0.0", lidc.sha256))
    runner = None
    if backend == "onnxruntime":
        from radiology_app.diagnosis.onnx_backend import OnnxRunner, export_onnx

        key = sha[:16] + ("_" + infos[1].sha256[:12] if adapter else "") + "_" + backbone.directory.name
        folder = app_paths().home / "onnx" / key
        if not (folder / "fused.onnx").exists():
            export_onnx(net, backbone, folder)
        runner = OnnxRunner(folder, backbone.tokenizer)
    return DiagnosisModel(
        net=net,
        backbone=backbone,
        backend=backend,
        infos=infos,
        onnx_runner=runner,
        saliency=saliency and backend == "pytorch",
        lidc=lidc,
    )


def load_adapter_heads(
    adapter: Path, base_meta: dict[str, Any], base_sha: str
) -> tuple[Any, dict[str, Any], str]:
    """Load a site adapter's fused-network weights (checked against ``adapter.json``'s SHA-256).

    Raises
    ------
    ModelError, ModelIntegrityError
        Missing, mismatched or incompatible adapter files.
    """
    info_path = adapter / "adapter.json"
    weights = adapter / "fused.safetensors"
    if not info_path.is_file() or not weights.is_file():
        raise ModelError(f"{adapter}: not a site adapter (adapter.json / fused.safetensors missing)")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    sha = sha256_file(weights)
    if sha != info.get("sha256"):
        raise ModelIntegrityError(f"{weights}: SHA-256 {sha} does not match adapter.json")
    if info.get("base_sha256") != base_sha:
        raise ModelError(f"{adapter}: made for another base model (base SHA-256 {info.get('base_sha256')})")
    from safetensors.torch import load_file

    from radiology_app.diagnosis.network import FusedNet, NetConfig

    net = FusedNet(NetConfig.from_dict(base_meta["net"]))
    try:
        net.load_state_dict(load_file(str(weights)))
    except RuntimeError as exc:
        raise ModelError(f"{weights}: adapter does not fit the network ({exc})") from exc
    net.eval()
    return net, info, sha
