"""Whole-study nodule segmentation with the shipped U-Net, and click-to-segment.

The study is resampled to the network's working grid, restricted to the lungs' bounding box, run
through MONAI's sliding-window inference (progress per window batch, cancellable), split into nodule
instances, filtered, and mapped back to the original grid by interpolating the probability.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from segmentation.candidates import all_candidates, candidate_crops
from segmentation.contrast import ENHANCED_HU, BloodPool, calcium_threshold_hu, measure_blood_pool
from segmentation.errors import (
    InvalidVolumeError,
    ModelIntegrityError,
    ProgressFn,
    check_cancel,
    report,
)
from segmentation.fp_reduction import DEFAULT_FP_WEIGHTS, load_classifier
from segmentation.lung import lung_envelope
from segmentation.lung import lung_mask as compute_lung_mask
from segmentation.measure import (
    CALCIUM_HU,
    NoduleMeasurement,
    lung_extents,
    measure_nodule,
)
from segmentation.model import ModelConfig, build_unet, normalize_hu
from segmentation.onnx_runtime import (
    BACKENDS,
    OrtModel,
    cached_onnx,
    export_classifier_onnx,
    export_unet_onnx,
)
from segmentation.resample import grid_like, nearest_index, nearest_resize, resample_image, target_shape
from segmentation.sliding_window import sliding_window, window_count
from segmentation.weights import MODELS_DIR, load_into, read_verified

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: The shipped weights and their model card.
DEFAULT_WEIGHTS = MODELS_DIR / "nodule_unet.safetensors"
DEFAULT_CARD = MODELS_DIR / "nodule_unet.md"
#: Where :func:`with_onnx` keeps the exported ONNX graphs unless told otherwise.
DEFAULT_ONNX_CACHE = Path.home() / ".cache" / "segmentation" / "onnx"
#: Grid (mm) of the lung mask computed during inference.
LUNG_GRID_MM = 2.5
#: How far (mm) beyond the dilated lung mask network peaks still make candidates (with a classifier).
WALL_REACH_MM = 6.0
#: Edge (mm) of the cube segmented around a classifier-accepted point outside the network's mask.
POINT_ROI_MM = 40.0
#: Lowest detection score that keeps a flat outline (one or two thick slices, see :func:`_vessel_like`).
FLAT_OUTLINE_MIN_SCORE = 0.95
#: A network component at least this large (diameter of a ball of its volume, mm) whose peak reaches
#: :data:`LARGE_COMPONENT_MIN_PROBABILITY` is kept whatever the classifier says: the classifier's
#: 40 mm crop holds little lung around a nodule this size.
LARGE_COMPONENT_MM = 15.0
LARGE_COMPONENT_MIN_PROBABILITY = 0.99
#: ... as long as the classifier gives one of its candidates at least this: on real scans, large
#: confident components it scores lower are apical streaks, atelectasis and the mediastinal border.
LARGE_COMPONENT_MIN_SCORE = 0.3
#: Outlines with less than this share of their voxels in the lungs' envelope
#: (:func:`segmentation.lung.lung_envelope`) lie in the mediastinum, heart, chest wall or diaphragm
#: and are not nodules.
MIN_IN_LUNG_FRACTION = 0.5
#: Lowest detection score that keeps an outline cut back to the envelope: on real scans most such
#: outlines are partial-volume slivers along the pleura, the heart border or the diaphragm.
CUT_BACK_MIN_SCORE = 0.9
#: Smallest mean diameter (mm) reported: below 3 mm a finding is a micronodule, not a nodule.
MIN_DIAMETER_MM = 3.0
#: Context around an outline's tight box that its measurement sees (mm): spicules end within 10 mm, and
#: the fissure shell (6 mm) plus the Hessian's reach.
MEASURE_CONTEXT_MM = 12.0
#: Edge (HU) of a nodule's outline as a lung window shows it, and how far (mm) the outline may grow
#: in-plane to reach it (see :func:`with_lung_window_rim`).
RIM_HU = -600.0
RIM_MM = 1.5
#: Coarsest voxels (mm) of the scans the shipped detector was trained on: in-plane pixel,
#: slice interval (finer scans are resampled to the working grid like any other).
TRAINED_MAX_PIXEL_MM = 1.2
TRAINED_MAX_SLICE_MM = 5.0
#: Voxels more than this many times coarser than the trained ones are not analysed: the network would
#: see an image unlike any it learnt from (on a 4.2 mm-pixel CT it reports about 100 "nodules").
REFUSED_COARSENESS = 2.0
#: How far (mm) the classical re-outline (:func:`_refine`) may reach beyond the network's outline: it
#: trims the network's blur but must not follow a thick vessel the nodule touches.
REFINE_REACH_MM = 1.5
#: Least share of the network's outline the classical re-outline must keep; with less it has lost part
#: of the nodule (one side of a cavity's wall, the ground glass around a core).
REFINE_MIN_KEPT = 0.3
#: Ground glass (HU): a network outline with at least :data:`REFINE_SUBSOLID_SHARE` of its voxels in
#: this range is subsolid. The classical threshold, drawn from its densest voxel, may then keep only the
#: solid core, so it must keep at least :data:`REFINE_MIN_KEPT_SUBSOLID` of the outline.
GROUND_GLASS_HU = (-750.0, -350.0)
REFINE_SUBSOLID_SHARE = 0.65
REFINE_MIN_KEPT_SUBSOLID = 0.5


def _coarseness(spacing_zyx_mm: Sequence[float]) -> float:
    """How many times coarser than the trained voxels (<= 1 when within them)."""
    sz, sy, sx = (float(s) for s in spacing_zyx_mm)
    return max(sy / TRAINED_MAX_PIXEL_MM, sx / TRAINED_MAX_PIXEL_MM, sz / TRAINED_MAX_SLICE_MM)


def _voxels_text(spacing_zyx_mm: Sequence[float]) -> str:
    sz, sy, sx = (float(s) for s in spacing_zyx_mm)
    return f"voxels of {sy:.2f} x {sx:.2f} mm in-plane and {sz:.2f} mm slices"


_TRAINED_TEXT = f"(pixels <= {TRAINED_MAX_PIXEL_MM:g} mm, slices <= {TRAINED_MAX_SLICE_MM:g} mm)"


def coarse_spacing_warning(spacing_zyx_mm: Sequence[float]) -> str | None:
    """A warning when the voxels (z, y, x spacing in mm) are coarser than the detector was trained on."""
    if _coarseness(spacing_zyx_mm) <= 1.0 + 1e-6:
        return None
    return (
        f"{_voxels_text(spacing_zyx_mm)} are coarser than the scans the nodule detector was trained on "
        f"{_TRAINED_TEXT}: expect missed nodules and false findings"
    )


def coarse_spacing_refusal(spacing_zyx_mm: Sequence[float]) -> str | None:
    """Why the detector must not run on these voxels (z, y, x spacing in mm), or ``None`` when it may."""
    if _coarseness(spacing_zyx_mm) <= REFUSED_COARSENESS + 1e-6:
        return None
    return (
        f"{_voxels_text(spacing_zyx_mm)} are more than {REFUSED_COARSENESS:g} times as coarse as the scans "
        f"the nodule detector was trained on {_TRAINED_TEXT}; automatic nodule detection is not run on them"
    )


@dataclass
class NoduleSegmenter:
    """A loaded network with its configuration.

    Attributes
    ----------
    net
        The torch module (eval mode).
    config
        Architecture and working grid.
    sha256
        SHA-256 of the weights file (``""`` for an in-memory network).
    name
        Model name for provenance.
    threshold
        Probability threshold for nodule voxels.
    min_component_mm3
        Components smaller than this (mm3, working grid) are dropped.
    min_max_probability
        Components whose peak probability is below this are dropped (false-positive reduction).
    max_elongation
        Components whose longest/shortest principal extent ratio exceeds this are dropped as
        vessel segments.
    refine
        Re-outline each detected nodule with the classical method of :func:`segment_at_point`,
        seeded at the network's peak, when that outline lies mostly inside the network's (this
        cuts off attached vessels).
    roi_size
        Sliding-window edge (voxels).
    overlap
        Sliding-window overlap fraction.
    sw_batch_size
        Windows per forward pass.
    classifier
        Optional candidate classifier (:mod:`segmentation.fp_reduction`). With it, every local
        maximum of the probability (and every small blob) is a candidate and the classifier,
        not ``min_max_probability``, decides which are nodules.
    onnx
        The network as an ONNX Runtime model (:class:`segmentation.onnx_runtime.OrtModel`); when set,
        :meth:`predict` runs it instead of ``net`` (see :func:`with_onnx`).
    """

    net: Any
    config: ModelConfig
    sha256: str = ""
    name: str = "nodule_unet"
    threshold: float = 0.5
    min_component_mm3: float = 8.0
    min_max_probability: float = 0.8
    max_elongation: float = 6.0
    refine: bool = True
    roi_size: int = 96
    overlap: float = 0.25
    sw_batch_size: int = 2
    classifier: Any = None
    onnx: Any = None

    @property
    def detection_threshold(self) -> float:
        """The threshold on :attr:`MeasuredNodule.score` that this segmenter applies."""
        return float(self.classifier.threshold) if self.classifier is not None else self.min_max_probability

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Nodule probability for a batch of normalised patches ``[B, 1, z, y, x]``."""
        import torch

        if self.onnx is not None:
            return torch.from_numpy(self.onnx(x.cpu().numpy())).to(x.device)
        with torch.inference_mode():
            logits = self.net(x)
            return torch.softmax(logits, dim=1)[:, 1:2]


@dataclass(frozen=True)
class MeasuredNodule:
    """One detected nodule.

    Attributes
    ----------
    label_id
        Its value in :attr:`SegmentationResult.labels`.
    measurement
        Its measurements.
    max_probability, mean_probability
        Peak and mean network probability inside it.
    voxel_count
        Voxels on the original grid.
    score
        Detection score: the candidate classifier's probability when one is used, else
        ``max_probability``.
    """

    label_id: int
    measurement: NoduleMeasurement
    max_probability: float
    mean_probability: float
    voxel_count: int
    score: float = 0.0


@dataclass(frozen=True)
class SegmentationResult:
    """Output of :func:`segment_nodules`.

    Attributes
    ----------
    labels
        Nodule instance map (int16) on the original grid.
    probability
        Nodule probability (float16) on the original grid, or ``None`` when not requested.
    lung_mask
        Lung mask (uint8, 1 right, 2 left) on the original grid.
    nodules
        The nodules, largest first.
    model_sha256
        SHA-256 of the weights used.
    blood_pool
        What the mediastinum showed about contrast (``None`` when not measured).
    contrast_enhanced
        Whether the scan was read as contrast-enhanced (header or image).
    calcium_hu
        HU from which a voxel counted as calcium (raised above the blood when enhanced).
    """

    labels: NDArray[np.int16]
    probability: NDArray[np.float16] | None
    lung_mask: NDArray[np.uint8]
    nodules: list[MeasuredNodule]
    model_sha256: str
    blood_pool: BloodPool | None = None
    contrast_enhanced: bool = False
    calcium_hu: float = CALCIUM_HU


def load_model(
    weights: Path | None = None,
    *,
    card: Path | None = None,
    classifier: Path | None = None,
    backend: str = "pytorch",
    onnx_cache: Path | None = None,
) -> NoduleSegmenter:
    """Load a nodule U-Net from safetensors after checking its SHA-256 against its model card.

    Parameters
    ----------
    weights
        The ``.safetensors`` file; the shipped ``resources/models/nodule_unet.safetensors`` when
        ``None``.
    card
        Its model card; ``weights`` with the suffix ``.md`` when ``None``.
    classifier
        Candidate-classifier weights; the shipped ones go with the shipped U-Net (``weights`` is
        ``None``), other U-Nets get none unless given.
    backend
        ``"pytorch"``, or ``"onnxruntime"`` to run both networks through ONNX Runtime (see
        :func:`with_onnx`).
    onnx_cache
        Folder of the exported ONNX graphs (``onnxruntime`` only); :data:`DEFAULT_ONNX_CACHE` when
        ``None``.

    Returns
    -------
    NoduleSegmenter
        The network in eval mode.

    Raises
    ------
    ModelIntegrityError
        When the file or card is missing, the hash differs, the file is not a nodule U-Net, the
        backend is unknown or the ONNX export fails.
    """
    if backend not in BACKENDS:
        raise ModelIntegrityError(
            Path(weights or DEFAULT_WEIGHTS), f"unknown backend {backend!r} (use {' or '.join(BACKENDS)})"
        )
    path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    torch_backend = backend == "pytorch"
    digest, meta, tensors = read_verified(path, card, with_tensors=torch_backend)
    if "config" not in meta:
        raise ModelIntegrityError(path, "no network config in the file's metadata")
    config = ModelConfig.from_json(meta["config"])
    net = None
    if torch_backend:
        net = load_into(build_unet(config), tensors, path)
    seg = NoduleSegmenter(net=net, config=config, sha256=digest)
    for key, attr in (("threshold", "threshold"), ("min_max_probability", "min_max_probability")):
        if key in config.extra:
            setattr(seg, attr, float(config.extra[key]))
    clf_path = classifier if classifier is not None else (DEFAULT_FP_WEIGHTS if weights is None else None)
    if clf_path is not None and (classifier is not None or clf_path.is_file()):
        clf = load_classifier(clf_path, build=torch_backend)
        if clf.unet_sha256 and clf.unet_sha256 != digest:
            raise ModelIntegrityError(
                clf_path, f"trained on the candidates of U-Net {clf.unet_sha256[:12]}, not {digest[:12]}"
            )
        seg.classifier = clf
    if torch_backend:
        return seg
    # the torch networks are built only when a graph must be exported (the first run)
    return _attach_onnx(
        seg, onnx_cache, functools.cache(lambda: load_model(weights, card=card, classifier=classifier))
    )


def _state_sha256(net: Any) -> str:
    """SHA-256 of a network's parameters and buffers (names and float32 values), for in-memory networks."""
    h = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(tensor.detach().cpu().float().numpy()).tobytes())
    return h.hexdigest()


def with_onnx(seg: NoduleSegmenter, cache_dir: Path | None = None) -> NoduleSegmenter:
    """A copy of ``seg`` whose U-Net and classifier run through ONNX Runtime (exported into ``cache_dir``).

    The graphs are exported from ``seg``'s own networks on first use (keyed by the weights' SHA-256,
    or by a hash of the parameters of an in-memory network) and checked against their manifest on
    every load (:func:`segmentation.onnx_runtime.cached_onnx`).

    Raises
    ------
    ModelIntegrityError
        When the export fails or ONNX Runtime cannot open a graph.
    """
    return _attach_onnx(seg, cache_dir, lambda: seg)


def _attach_onnx(
    seg: NoduleSegmenter, cache_dir: Path | None, torch_model: Callable[[], NoduleSegmenter]
) -> NoduleSegmenter:
    """``seg`` with ONNX Runtime models from the cache; ``torch_model()`` gives the networks to export."""
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_ONNX_CACHE
    unet_file = cached_onnx(
        cache,
        "nodule_unet",
        seg.sha256 or _state_sha256(seg.net),
        lambda p: export_unet_onnx(torch_model().net, p),
    )
    clf = seg.classifier
    if clf is not None:
        cfg = clf.config
        clf_file = cached_onnx(
            cache,
            "nodule_fp",
            clf.sha256 or _state_sha256(clf.net),
            lambda p: export_classifier_onnx(torch_model().classifier.net, cfg.in_channels, cfg.crop_size, p),
        )
        clf = replace(clf, onnx=OrtModel(clf_file))
    return replace(seg, onnx=OrtModel(unet_file), classifier=clf)


def _elongation(region: NDArray[np.bool_], spacing: Sequence[float], *, voxel_extent: bool = True) -> float:
    """Ratio of the longest to the shortest principal extent of a component (1 for a sphere).

    With ``voxel_extent`` each voxel counts as a box of its spacing (variance ``spacing**2 / 12`` per
    axis), so that a small nodule outlined in one or two thick slices is not called flat; without it,
    voxels are points and such an outline reads as a thin plate.
    """
    sp = np.asarray(spacing, dtype=np.float64)
    pts = np.argwhere(region) * sp
    if len(pts) < 10:
        return 1.0
    cov = np.cov(pts.T) + (np.diag(sp**2 / 12.0) if voxel_extent else 0.0)
    lam = np.linalg.eigvalsh(cov)
    return float(np.sqrt(max(lam[2], 1e-9) / max(lam[0], 0.05)))


def _vessel_like(mask: NDArray[np.bool_], sp: Sequence[float], max_elongation: float, score: float) -> bool:
    """Whether an outline on the original grid is too elongated to keep as a nodule.

    A vessel or fissure piece is elongated however its voxels are counted. A flat outline, one that
    is elongated only when its voxels count as points (a small nodule in one or two thick slices, but
    also a vessel crossing such a slice), is kept only with a score of at least
    :data:`FLAT_OUTLINE_MIN_SCORE`.
    """
    if mask.sum() < 10:
        return False
    if _elongation(mask, sp) > max_elongation:
        return True
    return _elongation(mask, sp, voxel_extent=False) > max_elongation and score < FLAT_OUTLINE_MIN_SCORE


def _refine(
    hu: NDArray[np.generic],
    sp: tuple[float, float, float],
    osl: tuple[slice, ...],
    prob: NDArray[np.float32],
    mask: NDArray[np.bool_],
) -> NDArray[np.bool_]:
    """The classical outline seeded at the probability peak, kept within :data:`REFINE_REACH_MM` of the
    network's mask, if it agrees with that mask (else the mask itself)."""
    peak = np.unravel_index(int(np.argmax(np.where(mask, prob, -1.0))), prob.shape)
    seed = tuple(int(osl[a].start) + int(peak[a]) for a in range(3))
    extent = max((osl[a].stop - osl[a].start) * sp[a] for a in range(3))
    rsl, local = _roi_around(hu.shape, sp, seed, float(np.clip(2.0 * extent, 40.0, 100.0)))
    lo = [r.start for r in rsl]
    hi = [r.stop for r in rsl]
    classical = _classical_at_point(np.asarray(hu[rsl], dtype=np.float32), sp, local)
    if not classical.any():
        return mask
    # bring the classical mask onto the component's box
    full = np.zeros(mask.shape, dtype=bool)
    src = []
    dst = []
    for a in range(3):
        a0 = max(lo[a], osl[a].start)
        a1 = min(hi[a], osl[a].stop)
        if a1 <= a0:
            return mask
        src.append(slice(a0 - lo[a], a1 - lo[a]))
        dst.append(slice(a0 - osl[a].start, a1 - osl[a].start))
    full[tuple(dst)] = classical[tuple(src)]
    n_cls = int(classical.sum())
    inside = int((full & mask).sum())
    kept = inside / max(int(mask.sum()), 1)
    if n_cls == 0 or inside / n_cls < 0.6 or kept < REFINE_MIN_KEPT:
        return mask
    if kept < REFINE_MIN_KEPT_SUBSOLID:
        smooth = ndimage.gaussian_filter(np.asarray(hu[osl], dtype=np.float32), [0.5 / s for s in sp])
        inside_hu = smooth[mask]
        ground_glass = (inside_hu > GROUND_GLASS_HU[0]) & (inside_hu < GROUND_GLASS_HU[1])
        if float(np.mean(ground_glass)) >= REFINE_SUBSOLID_SHARE:
            return mask
    refined: NDArray[np.bool_] = full & ndimage.binary_dilation(mask, structure=_ball(REFINE_REACH_MM, sp))
    return refined


def _interp_matrix(n_src: int, coords: NDArray[np.float64]) -> NDArray[np.float32]:
    """Linear-interpolation weights (len(coords) x n_src) at fractional source coordinates."""
    c = np.clip(coords, 0.0, n_src - 1.0)
    i0 = np.floor(c).astype(int)
    i1 = np.minimum(i0 + 1, n_src - 1)
    w1 = (c - i0).astype(np.float32)
    mat = np.zeros((len(c), n_src), dtype=np.float32)
    mat[np.arange(len(c)), i0] += 1.0 - w1
    mat[np.arange(len(c)), i1] += w1
    return mat


def _to_original(
    prob_w: NDArray[np.float32],
    lo_orig: Sequence[int],
    hi_orig: Sequence[int],
    scale: Sequence[float],
    offset_w: Sequence[int],
) -> NDArray[np.float32]:
    """Sample the working-grid probability at original voxels ``lo..hi`` (separable trilinear).

    Original index ``i`` sits at working coordinate ``(i + 0.5) * scale - 0.5`` (extent-preserving
    resampling); ``offset_w`` is the working index of ``prob_w[0, 0, 0]``.
    """
    mats = []
    for ax in range(3):
        i = np.arange(lo_orig[ax], hi_orig[ax], dtype=np.float64)
        w = (i + 0.5) * scale[ax] - 0.5 - offset_w[ax]
        mats.append(_interp_matrix(prob_w.shape[ax], w))
    out = np.tensordot(mats[0], prob_w, axes=(1, 0))
    out = np.tensordot(out, mats[1], axes=(1, 1))
    out = np.tensordot(out, mats[2], axes=(1, 1))
    return np.ascontiguousarray(out, dtype=np.float32)


def _validate(hu: NDArray[np.generic], spacing: Sequence[float]) -> tuple[float, float, float]:
    if hu.ndim != 3:
        raise InvalidVolumeError(f"segment_nodules needs a 3-D volume, got shape {hu.shape}")
    sp = tuple(float(s) for s in spacing)
    if len(sp) != 3 or min(sp) <= 0:
        raise InvalidVolumeError(f"spacing must be three positive numbers (mm), got {spacing}")
    return sp[0], sp[1], sp[2]


def _sliding_window(
    seg: NoduleSegmenter,
    img: NDArray[np.float32],
    on_progress: ProgressFn | None,
    cancel: object | None,
    done0: int,
    total: int,
) -> NDArray[np.float32]:
    """The network's Gaussian-blended sliding window over ``img`` (HU): MONAI's with torch, or its numpy
    twin (:mod:`segmentation.sliding_window`) with ONNX Runtime, which then needs no torch at all."""
    n_batches = int(np.ceil(window_count(img.shape, seg.roi_size, seg.overlap) / seg.sw_batch_size))
    cval = float(normalize_hu(np.array([-1000.0]))[0])

    def step(done: int) -> None:
        check_cancel(cancel)
        report(on_progress, done0 + done, total, f"window batch {done}/{n_batches}")

    if seg.onnx is not None:
        check_cancel(cancel)
        return sliding_window(
            normalize_hu(img),
            seg.onnx,
            seg.roi_size,
            seg.overlap,
            seg.sw_batch_size,
            cval,
            on_batch=lambda done, _n: step(done),
        )
    import torch
    from monai.inferers.utils import sliding_window_inference

    calls = [0]

    def predictor(x: torch.Tensor) -> torch.Tensor:
        check_cancel(cancel)
        out = seg.predict(x)
        calls[0] += 1
        step(calls[0])
        return out

    # on the network's device (the CPU in the application; a GPU in fp_bulk)
    device = next(seg.net.parameters()).device
    x = torch.from_numpy(normalize_hu(img))[None, None].to(device)
    with torch.inference_mode():
        prob = sliding_window_inference(
            x,
            roi_size=(seg.roi_size,) * 3,
            sw_batch_size=seg.sw_batch_size,
            predictor=predictor,
            overlap=seg.overlap,
            mode="gaussian",
            padding_mode="constant",
            cval=cval,
        )
    assert isinstance(prob, torch.Tensor)
    return np.ascontiguousarray(prob[0, 0].float().cpu().numpy(), dtype=np.float32)


def _in_context(
    osl: tuple[slice, ...], mask: NDArray[np.bool_], sp: Sequence[float], shape: Sequence[int]
) -> tuple[tuple[slice, ...], NDArray[np.bool_]]:
    """A box reaching :data:`MEASURE_CONTEXT_MM` beyond an outline's own tight box ``osl``, and the
    outline placed in it: the measurement looks that far out for spicules and for a fissure."""
    pad = [int(np.ceil(MEASURE_CONTEXT_MM / s)) for s in sp]
    big = tuple(
        slice(max(o.start - p, 0), min(o.stop + p, n)) for o, p, n in zip(osl, pad, shape, strict=True)
    )
    m = np.zeros([b.stop - b.start for b in big], dtype=bool)
    m[tuple(slice(o.start - b.start, o.stop - b.start) for o, b in zip(osl, big, strict=True))] = mask
    return big, m


def segment_nodules(
    hu: NDArray[np.generic],
    spacing_zyx_mm: Sequence[float],
    *,
    segmenter: NoduleSegmenter | None = None,
    lung: NDArray[np.generic] | None = None,
    on_progress: ProgressFn | None = None,
    cancel: object | None = None,
    return_probability: bool = False,
    contrast: bool | None = None,
) -> SegmentationResult:
    """Find, segment and measure the lung nodules of a chest CT.

    Parameters
    ----------
    hu
        CT in HU, axes z, y, x (x towards the patient's left, z towards superior).
    spacing_zyx_mm
        Voxel spacing (mm).
    segmenter
        A loaded network; the shipped one (:func:`load_model`) when ``None``.
    lung
        A lung mask on the original grid (1 right, 2 left); computed when ``None``.
    on_progress
        ``(done, total, message)``: one step per window batch plus the stages around them.
    cancel
        Object with a boolean ``cancelled`` attribute, polled between window batches.
    return_probability
        Also return the probability map on the original grid (float16; costs memory).
    contrast
        ``True`` when the DICOM header records an intravenous contrast agent. The image is read for
        enhanced blood either way (:mod:`segmentation.contrast`); on an enhanced scan calcium is
        called only above the blood's HU and enhancing outlines (core >= 150 HU) are vessels.

    Returns
    -------
    SegmentationResult
        Labels, probability (or ``None``), lung mask and measured nodules.

    Raises
    ------
    InvalidVolumeError
        When the volume or spacing is invalid.
    SegmentationCancelled
        When cancelled.
    ModelIntegrityError
        When the shipped weights fail their check.
    """
    sp = _validate(hu, spacing_zyx_mm)
    seg = segmenter if segmenter is not None else load_model()
    w = seg.config.working_spacing_mm
    shape_w = target_shape(hu.shape, sp, (w, w, w))
    scale = [shape_w[k] / hu.shape[k] for k in range(3)]  # working voxels per original voxel
    sp_w = tuple(hu.shape[k] * sp[k] / shape_w[k] for k in range(3))
    report(on_progress, 0, 1, "resampling")
    check_cancel(cancel)
    img_w = resample_image(hu, sp, shape=shape_w)
    check_cancel(cancel)
    report(on_progress, 0, 1, "lung mask")
    # the lung mask only bounds the search, sides the nodules and gives the lungs' envelope: a 2.5 mm
    # grid is enough
    coarse, sp_c = grid_like(shape_w, sp_w, LUNG_GRID_MM)
    img_c = resample_image(img_w, sp_w, shape=coarse)
    if lung is not None:
        if lung.shape != hu.shape:
            raise InvalidVolumeError(f"lung mask shape {lung.shape} differs from the volume's {hu.shape}")
        lung_w = resample_image(lung, sp, shape=shape_w, mode="nearest").astype(np.uint8)
        lung_c = resample_image(lung, sp, shape=coarse, mode="nearest").astype(np.uint8)
    else:
        lung_c = compute_lung_mask(img_c, sp_c)
        lung_w = nearest_resize(lung_c, shape_w)
    pool = measure_blood_pool(img_c, lung_c, sp_c)
    enhanced = bool(contrast) or pool.enhanced
    calcium_hu = calcium_threshold_hu(CALCIUM_HU, enhanced, pool.blood_hu)
    check_cancel(cancel)
    labels = np.zeros(hu.shape, dtype=np.int16)
    if not lung_w.any():
        lung_o = np.zeros(hu.shape, dtype=np.uint8) if lung is None else np.asarray(lung, dtype=np.uint8)
        return SegmentationResult(labels, None, lung_o, [], seg.sha256, pool, enhanced, calcium_hu)
    # the lungs' bounding box from the mask's projections (no list of every lung voxel)
    inside = [np.flatnonzero(lung_w.any(axis=tuple(b for b in range(3) if b != a))) for a in range(3)]
    margin = int(np.ceil(10.0 / w))
    lo = np.maximum(np.array([i[0] for i in inside]) - margin, 0)
    hi = np.minimum(np.array([i[-1] for i in inside]) + margin + 1, np.array(shape_w))
    crop = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    sub = img_w[crop]
    n_batches = int(np.ceil(window_count(sub.shape, seg.roi_size, seg.overlap) / seg.sw_batch_size))
    total = n_batches + 2
    report(on_progress, 0, total, "network")
    prob_crop = _sliding_window(seg, sub, on_progress, cancel, 0, total)
    check_cancel(cancel)
    report(on_progress, n_batches + 1, total, "nodules")

    # instances on the working grid, restricted to (a dilated) lung, with false-positive reduction
    lung_crop = lung_w[crop] > 0
    near_lung = ndimage.binary_dilation(lung_crop, iterations=max(1, round(6.0 / w)))
    wide = near_lung
    if seg.classifier is not None:
        # the classical lung mask leaves out nodules on the pleura: let network peaks reach further
        # out (the classifier, not the mask, rejects what lies in the chest wall)
        wide = ndimage.binary_dilation(near_lung, iterations=max(1, round(WALL_REACH_MM / w)))
    fg = (prob_crop >= seg.threshold) & wide
    comp, n = ndimage.label(fg, structure=np.ones((3, 3, 3)))
    if seg.classifier is not None:
        kept, points = _classified_candidates(seg, sub, prob_crop, near_lung, wide, comp, sp_w)
    else:
        kept, points = _filtered_components(seg, prob_crop, lung_crop, comp, n, sp_w), []

    # map each kept instance back to the original grid
    lung_o = np.asarray(lung, dtype=np.uint8) if lung is not None else nearest_resize(lung_w, hu.shape)
    # the lungs' envelope, looked up per outline box on the coarse grid (no full-size copy)
    envelope_c = lung_envelope(lung_c, sp_c)
    to_coarse = [nearest_index(coarse[a], hu.shape[a]) for a in range(3)]

    def envelope_in(osl: tuple[slice, ...]) -> NDArray[np.bool_]:
        box: NDArray[np.bool_] = envelope_c[np.ix_(*(to_coarse[a][osl[a]] for a in range(3)))]
        return box

    hu_arr = np.asarray(hu)
    extents = lung_extents(lung_o)
    nodules: list[MeasuredNodule] = []

    def record(
        osl: tuple[slice, ...],
        mask_o: NDArray[np.bool_],
        seed: tuple[int, ...],
        pmax: float,
        pmean: float,
        score: float,
    ) -> None:
        """Measure an accepted outline and label it as the next nodule, when it lies in the lungs.

        ``seed`` is the outline's peak (index within ``osl``). An outline mostly outside the lungs'
        envelope is a structure of the mediastinum, heart, chest wall or diaphragm and is dropped,
        unless its seed lies inside and its score is at least :data:`CUT_BACK_MIN_SCORE`: then it is
        a juxtapleural nodule whose outline ran into the wall, and only its part inside the envelope
        is kept. Outlines under :data:`MIN_DIAMETER_MM` are dropped.
        """
        envelope = envelope_in(osl)
        if float(envelope[mask_o].mean()) < MIN_IN_LUNG_FRACTION:
            if not envelope[seed] or score < CUT_BACK_MIN_SCORE:
                return
            mask_o = mask_o & envelope
            if not mask_o.any():
                return
        mask_o = with_lung_window_rim(hu_arr[osl], mask_o, sp, free=(labels[osl] == 0) & envelope)
        box, mask_box = _in_context(osl, mask_o, sp, hu.shape)
        meas = measure_nodule(
            hu_arr[box],
            mask_box,
            sp,
            lung_mask=lung_o[box],
            offset_zyx=[s_.start for s_ in box],
            full_shape_zyx=hu.shape,
            calcium_hu=calcium_hu,
            lung_extents=extents,
        )
        if meas.mean_diameter_mm < MIN_DIAMETER_MM:
            return
        if enhanced and not meas.calcification and meas.core_median_hu >= ENHANCED_HU:
            return  # an enhancing vessel, not a nodule
        label_id = len(nodules) + 1
        labels[osl][mask_o] = label_id
        nodules.append(
            MeasuredNodule(
                label_id=label_id,
                measurement=meas,
                max_probability=round(pmax, 4),
                mean_probability=round(pmean, 4),
                voxel_count=int(mask_o.sum()),
                score=round(score, 4),
            )
        )

    for k, sl, pmax, pmean, score in kept:
        check_cancel(cancel)
        pad = 2
        wlo = [max(s.start - pad, 0) for s in sl]
        whi = [min(s.stop + pad, comp.shape[a]) for a, s in enumerate(sl)]
        wsl = tuple(slice(a, b) for a, b in zip(wlo, whi, strict=True))
        region = ndimage.binary_dilation(comp[wsl] == k, iterations=1)
        pw = np.where(region, prob_crop[wsl], 0.0).astype(np.float32)
        # original voxels covering this working box
        off_w = [int(lo[a]) + wlo[a] for a in range(3)]
        olo = [max(int(np.floor((off_w[a] - 0.5) / scale[a])), 0) for a in range(3)]
        ohi = [
            min(int(np.ceil((off_w[a] + pw.shape[a] + 0.5) / scale[a])) + 1, hu.shape[a]) for a in range(3)
        ]
        po = _to_original(pw, olo, ohi, scale, off_w)
        mask_o = po >= seg.threshold
        osl = tuple(slice(a, b) for a, b in zip(olo, ohi, strict=True))
        if seg.refine and mask_o.any():
            mask_o = _refine(hu_arr, sp, osl, po, mask_o)
        mask_o &= labels[osl] == 0
        too_small = float(mask_o.sum()) * float(np.prod(sp)) < seg.min_component_mm3
        if too_small or _vessel_like(mask_o, sp, seg.max_elongation, score):
            # on the original grid the outline shows a vessel or fissure piece, or too little of a
            # small nodule to measure; an accepted candidate gets the classical outline at its peak
            # instead (it cuts attached vessels and follows the nodule's own edge)
            if seg.classifier is not None:
                own = np.where(comp[sl] == k, prob_crop[sl], -1.0)
                pk = np.unravel_index(int(np.argmax(own)), own.shape)
                points.append(
                    ((sl[0].start + int(pk[0]), sl[1].start + int(pk[1]), sl[2].start + int(pk[2])), score)
                )
                continue
            if not too_small:
                continue
        if not mask_o.any():
            # a tiny nodule whose interpolated peak falls under the threshold: keep its peak voxel
            peak = np.unravel_index(int(np.argmax(po)), po.shape)
            mask_o[peak] = True
        if float(mask_o.sum()) * float(np.prod(sp)) < seg.min_component_mm3:
            continue
        peak = np.unravel_index(int(np.argmax(np.where(mask_o, po, -1.0))), po.shape)
        record(osl, mask_o, tuple(int(v) for v in peak), pmax, pmean, score)
    for centre_w, score in points:
        check_cancel(cancel)
        o = tuple(
            int(np.clip(round((int(lo[a]) + centre_w[a] + 0.5) / scale[a] - 0.5), 0, hu.shape[a] - 1))
            for a in range(3)
        )
        if labels[o]:
            continue
        osl, seed = _roi_around(hu.shape, sp, o, POINT_ROI_MM)
        mask_o = _classical_at_point(np.asarray(hu_arr[osl], dtype=np.float32), sp, seed)
        mask_o &= labels[osl] == 0
        if float(mask_o.sum()) * float(np.prod(sp)) < seg.min_component_mm3:
            continue
        if _vessel_like(mask_o, sp, seg.max_elongation, score):
            continue
        pc = float(prob_crop[centre_w])
        record(osl, mask_o, seed, pc, pc, score)
    nodules.sort(key=lambda m: -m.measurement.volume_mm3)
    probability: NDArray[np.float16] | None = None
    if return_probability:
        full = np.zeros(shape_w, dtype=np.float32)
        full[crop] = prob_crop
        probability = resample_image(full, sp_w, shape=hu.shape).astype(np.float16)
    report(on_progress, total, total, f"{len(nodules)} nodules")
    return SegmentationResult(labels, probability, lung_o, nodules, seg.sha256, pool, enhanced, calcium_hu)


def segment_at_point(
    hu: NDArray[np.generic],
    spacing_zyx_mm: Sequence[float],
    point_zyx: tuple[int, int, int],
    *,
    segmenter: NoduleSegmenter | None = None,
    roi_mm: float = 64.0,
) -> NDArray[np.uint8]:
    """Segment the nodule under a clicked voxel (works when the network missed it).

    The network is run on a cube around the point when a segmenter is given and its component at
    the point is used if it has one; otherwise (or when it has none) a classical method segments
    the blob: an adaptive HU threshold between the seed and the surrounding lung, the connected part
    containing the seed, and a morphological opening sized to the blob that cuts attached vessels
    and the chest wall.

    Parameters
    ----------
    hu
        CT in HU ``[z, y, x]``.
    spacing_zyx_mm
        Voxel spacing (mm).
    point_zyx
        Voxel index inside (or within ~2 mm of) the nodule.
    segmenter
        Optional network.
    roi_mm
        Edge of the cube examined around the point (mm).

    Returns
    -------
    numpy.ndarray
        uint8 mask of the volume's shape (1 inside); empty when nothing nodule-like is there.

    Raises
    ------
    InvalidVolumeError
        When the point lies outside the volume or the inputs are invalid.
    """
    sp = _validate(hu, spacing_zyx_mm)
    if any(not (0 <= int(p) < n) for p, n in zip(point_zyx, hu.shape, strict=True)):
        raise InvalidVolumeError(f"point {point_zyx} lies outside the volume {hu.shape}")
    sl, seed = _roi_around(hu.shape, sp, tuple(int(p) for p in point_zyx), roi_mm)
    roi = np.asarray(hu[sl], dtype=np.float32)
    out = np.zeros(hu.shape, dtype=np.uint8)
    mask: NDArray[np.bool_] | None = None
    if segmenter is not None:
        mask = _network_at_point(segmenter, roi, sp, seed)
    if mask is None or not mask.any():
        mask = _classical_at_point(roi, sp, seed)
    out[sl][mask] = 1
    return out


def _roi_around(
    shape: Sequence[int], sp: Sequence[float], point: Sequence[int], roi_mm: float
) -> tuple[tuple[slice, ...], tuple[int, int, int]]:
    """The cube of edge ``roi_mm`` around ``point`` (clipped to the volume) and the point within it."""
    half = [int(np.ceil(roi_mm / 2.0 / s)) for s in sp]
    lo = [max(int(p) - h, 0) for p, h in zip(point, half, strict=True)]
    hi = [min(int(p) + h + 1, n) for p, h, n in zip(point, half, shape, strict=True)]
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    return sl, (int(point[0]) - lo[0], int(point[1]) - lo[1], int(point[2]) - lo[2])


#: One kept network component: label, box, peak and mean probability, detection score.
_Kept = tuple[int, tuple[slice, ...], float, float, float]


def _filtered_components(
    seg: NoduleSegmenter,
    prob: NDArray[np.float32],
    lung: NDArray[np.bool_],
    comp: NDArray[np.int32],
    n: int,
    sp_w: Sequence[float],
) -> list[_Kept]:
    """Network components that pass the size, peak-probability, in-lung and shape filters."""
    vox_w = float(np.prod(sp_w))
    kept: list[_Kept] = []
    if not n:
        return kept
    for k, sl in enumerate(ndimage.find_objects(comp), start=1):
        if sl is None:
            continue
        region = comp[sl] == k
        pv = prob[sl][region]
        pmax = float(pv.max())
        if float(region.sum()) * vox_w < seg.min_component_mm3 or pmax < seg.min_max_probability:
            continue
        if float(lung[sl][region].mean()) < 0.3:
            continue
        if _elongation(region, sp_w) > seg.max_elongation:
            continue  # a vessel segment, not a nodule
        kept.append((k, sl, pmax, float(pv.mean()), pmax))
    return kept


def _classified_candidates(
    seg: NoduleSegmenter,
    img: NDArray[np.float32],
    prob: NDArray[np.float32],
    region: NDArray[np.bool_],
    wide: NDArray[np.bool_],
    comp: NDArray[np.int32],
    sp_w: Sequence[float],
) -> tuple[list[_Kept], list[tuple[tuple[int, int, int], float]]]:
    """Candidates the classifier accepts: network components, and points outside any component.

    Blob candidates lie in ``region`` (the dilated lung), network peaks in ``wide``. A large, confident
    component mostly in ``region`` that the classifier does not reject outright is kept too, scored at
    least its peak probability (see :data:`LARGE_COMPONENT_MM`).
    """
    cands = all_candidates(img, prob, region, float(np.mean(sp_w)), network_region=wide)
    if not cands:
        return [], []
    scores = seg.classifier.score(candidate_crops(img, prob, [c.centre for c in cands]))
    best: dict[int, float] = {}
    rated: dict[int, float] = {}  # each component's best score, accepted or not
    points: list[tuple[tuple[int, int, int], float]] = []
    for c, sc in zip(cands, scores, strict=True):
        k = int(comp[c.centre])
        if k:
            rated[k] = max(rated.get(k, 0.0), float(sc))
        if float(sc) < seg.classifier.threshold:
            continue
        if k:
            best[k] = max(best.get(k, 0.0), float(sc))
        else:
            points.append((c.centre, float(sc)))
    objs = ndimage.find_objects(comp)
    counts = np.bincount(comp.ravel())
    counts[0] = 0
    for k in np.flatnonzero(counts >= np.pi / 6.0 * LARGE_COMPONENT_MM**3 / float(np.prod(sp_w))).tolist():
        sl = objs[k - 1]
        assert sl is not None
        own = comp[sl] == k
        peak = float(prob[sl][own].max())
        if (
            peak >= LARGE_COMPONENT_MIN_PROBABILITY
            and rated.get(k, 0.0) >= LARGE_COMPONENT_MIN_SCORE
            and float(region[sl][own].mean()) >= 0.5
        ):
            best[k] = max(best.get(k, 0.0), peak)
    kept: list[_Kept] = []
    for k, sc in sorted(best.items()):
        sl = objs[k - 1]
        assert sl is not None
        pv = prob[sl][comp[sl] == k]
        kept.append((k, sl, float(pv.max()), float(pv.mean()), sc))
    return kept, points


def _network_at_point(
    seg: NoduleSegmenter, roi: NDArray[np.float32], sp: tuple[float, float, float], seed: tuple[int, ...]
) -> NDArray[np.bool_] | None:
    w = seg.config.working_spacing_mm
    shape_w = target_shape(roi.shape, sp, (w, w, w))
    img_w = resample_image(roi, sp, shape=shape_w)
    old = (seg.roi_size, seg.overlap)
    seg.roi_size = max(32, int(np.ceil(max(shape_w) / 16.0)) * 16)
    try:
        prob = _sliding_window(seg, img_w, None, None, 0, 1)
    finally:
        seg.roi_size, seg.overlap = old
    scale = [shape_w[k] / roi.shape[k] for k in range(3)]
    po = _to_original(prob, (0, 0, 0), roi.shape, scale, (0, 0, 0))
    fg = po >= seg.threshold
    comp, n = ndimage.label(fg, structure=np.ones((3, 3, 3)))
    if n == 0:
        return None
    k = int(comp[seed])
    if k == 0:
        # the nearest component within 3 mm of the click
        d, idx = ndimage.distance_transform_edt(comp == 0, sampling=sp, return_indices=True)
        if float(d[seed]) > 3.0:
            return None
        k = int(comp[tuple(int(i[seed]) for i in idx)])
    result: NDArray[np.bool_] = comp == k
    return result


def with_lung_window_rim(
    hu: NDArray[np.generic],
    mask: NDArray[np.bool_],
    sp: Sequence[float],
    *,
    free: NDArray[np.bool_] | None = None,
) -> NDArray[np.bool_]:
    """The outline grown in-plane, by up to :data:`RIM_MM`, over the rim a lung window shows as nodule.

    The network and the classical outline put the edge half-way between nodule and lung; radiologists
    outline on a lung window, whose visible edge lies further out, where partial volume still lifts
    the lung above :data:`RIM_HU` (LIDC readers' outlines lie at -400 to -800 HU). Only voxels in
    ``free`` are added.
    """
    smooth = ndimage.gaussian_filter(np.asarray(hu, dtype=np.float32), [0.35 / s for s in sp])
    allowed = smooth > RIM_HU
    if free is not None:
        allowed &= free
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    grown = mask.copy()
    for _ in range(max(1, round(RIM_MM / min(sp[1], sp[2])))):
        grown |= ndimage.binary_dilation(grown, structure=in_plane) & allowed
    return grown


def _ball(radius_mm: float, sp: Sequence[float]) -> NDArray[np.bool_]:
    r = [max(int(np.floor(radius_mm / s)), 0) for s in sp]
    zz, yy, xx = np.ogrid[-r[0] : r[0] + 1, -r[1] : r[1] + 1, -r[2] : r[2] + 1]
    ball: NDArray[np.bool_] = (zz * sp[0]) ** 2 + (yy * sp[1]) ** 2 + (xx * sp[2]) ** 2 <= radius_mm**2 + 1e-6
    return ball


def _classical_at_point(
    roi: NDArray[np.float32], sp: tuple[float, float, float], seed: tuple[int, ...]
) -> NDArray[np.bool_]:
    sm = ndimage.gaussian_filter(roi, [0.5 / s for s in sp])
    # move the seed to the densest voxel within ~2 mm of the click
    r = [max(1, round(2.0 / s)) for s in sp]
    lo = [max(seed[a] - r[a], 0) for a in range(3)]
    hi = [min(seed[a] + r[a] + 1, roi.shape[a]) for a in range(3)]
    win = sm[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    j = np.unravel_index(int(np.argmax(win)), win.shape)
    s = tuple(int(lo[a] + j[a]) for a in range(3))
    seed_hu = float(sm[s])
    lung_vals = sm[(sm > -980) & (sm < -700)]
    bg = float(np.median(lung_vals)) if lung_vals.size else -850.0
    if seed_hu < bg + 100.0:
        return np.zeros(roi.shape, dtype=bool)
    if seed_hu > -300.0:
        # solid seed: half-way between solid tissue and lung; widen to a ground-glass threshold
        # when a ground-glass halo surrounds the solid part (part-solid nodule)
        thr = (min(seed_hu, 40.0) + bg) / 2.0
        comp, _ = ndimage.label(sm > thr)
        solid = comp == comp[s]
        inner_ring = ndimage.binary_dilation(solid, structure=_ball(1.2, sp))
        ring = ndimage.binary_dilation(solid, structure=_ball(3.0, sp)) & ~inner_ring
        halo = float(np.mean((sm[ring] > -760.0) & (sm[ring] < -350.0))) if ring.any() else 0.0
        if halo > 0.6:
            thr = (-650.0 + bg) / 2.0
    else:
        level = float(np.median(win))
        thr = (max(level, seed_hu - 60.0) + bg) / 2.0
    fg = sm > thr
    comp, _ = ndimage.label(fg)
    region = comp == comp[s]
    # size estimate from the distance to the region's edge at the seed
    dist = ndimage.distance_transform_edt(region, sampling=sp)
    rr = [max(1, round(3.0 / x)) for x in sp]
    lo2 = [max(s[a] - rr[a], 0) for a in range(3)]
    hi2 = [min(s[a] + rr[a] + 1, roi.shape[a]) for a in range(3)]
    radius = float(dist[lo2[0] : hi2[0], lo2[1] : hi2[1], lo2[2] : hi2[2]].max())
    open_r = float(np.clip(0.55 * radius, 0.0, 4.0))
    if open_r >= min(sp):
        opened = ndimage.binary_opening(region, structure=_ball(open_r, sp))
        comp2, n2 = ndimage.label(opened)
        if n2:
            k = int(comp2[s])
            if k == 0:
                _, idx = ndimage.distance_transform_edt(comp2 == 0, return_indices=True)
                k = int(comp2[tuple(int(i[s]) for i in idx)])
            core = comp2 == k
            # restore the outline lost to the opening, but only next to the core
            grown = ndimage.binary_dilation(core, structure=_ball(min(sp) * 1.01, sp)) & region
            region = grown
    # a blob still touching the ROI border is attached to the wall: keep a ball around the seed
    border = np.zeros(roi.shape, dtype=bool)
    border[[0, -1], :, :] = True
    border[:, [0, -1], :] = True
    border[:, :, [0, -1]] = True
    if (region & border).any():
        zz, yy, xx = np.ogrid[: roi.shape[0], : roi.shape[1], : roi.shape[2]]
        d2 = ((zz - s[0]) * sp[0]) ** 2 + ((yy - s[1]) * sp[1]) ** 2 + ((xx - s[2]) * sp[2]) ** 2
        region &= d2 <= (1.3 * radius + 1.0) ** 2
    result: NDArray[np.bool_] = region
    return result
