"""False-positive reduction: a small MONAI CNN that scores nodule candidates from their crops.

Input: 32^3 crops on the 1.25 mm working grid (normalised HU, and optionally the U-Net's probability,
see :func:`segmentation.candidates.candidate_crops`). Output: the probability that the candidate is
a nodule. The operating threshold is stored with the weights.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from segmentation.candidates import CROP_SIZE
from segmentation.errors import ModelIntegrityError
from segmentation.weights import MODELS_DIR, load_into, read_verified

if TYPE_CHECKING:
    import torch

#: The shipped classifier.
DEFAULT_FP_WEIGHTS = MODELS_DIR / "nodule_fp.safetensors"
#: Value of the ``format`` metadata key of classifier weights.
FP_FORMAT = "nodule-fp-classifier-1"


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture and operating point of the candidate classifier.

    Attributes
    ----------
    channels, strides
        MONAI ``Classifier`` layers.
    crop_size
        Crop edge (working voxels).
    in_channels
        Crop channels read: 1 (normalised HU) or 2 (plus the network's probability).
    threshold
        Candidates scoring at least this are kept as nodules.
    unet_weight
        Weight of the U-Net's probability at the candidate in its score: the score is
        ``(1 - w) * classifier + w * U-Net`` (0: the classifier alone).
    """

    channels: tuple[int, ...] = (8, 16, 32, 64)
    strides: tuple[int, ...] = (2, 2, 2, 2)
    crop_size: int = CROP_SIZE
    in_channels: int = 1
    threshold: float = 0.5
    unet_weight: float = 0.0

    def to_json(self) -> str:
        """The config as JSON (stored in the weights file's metadata)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ClassifierConfig:
        """Rebuild a config from :meth:`to_json` output."""
        raw: dict[str, Any] = json.loads(text)
        return cls(
            channels=tuple(int(c) for c in raw["channels"]),
            strides=tuple(int(s) for s in raw["strides"]),
            crop_size=int(raw["crop_size"]),
            in_channels=int(raw.get("in_channels", 2)),
            threshold=float(raw["threshold"]),
            unet_weight=float(raw.get("unet_weight", 0.0)),
        )


def build_classifier(config: ClassifierConfig) -> torch.nn.Module:
    """A MONAI ``Classifier`` CNN: ``config.in_channels`` input channels, one logit."""
    from monai.networks.nets.classifier import Classifier

    s = config.crop_size
    net: torch.nn.Module = Classifier(
        in_shape=(config.in_channels, s, s, s),
        classes=1,
        channels=config.channels,
        strides=config.strides,
        num_res_units=1,
        norm="batch",
    )
    return net


@dataclass
class CandidateClassifier:
    """A loaded candidate classifier.

    Attributes
    ----------
    net
        The torch module (eval mode).
    config
        Architecture and threshold.
    sha256
        SHA-256 of the weights file (``""`` for an in-memory network).
    unet_sha256
        SHA-256 of the U-Net whose probabilities it was trained on (``""`` when unknown).
    threshold
        Operating threshold on the nodule probability (the config's unless changed).
    batch_size
        Crops per forward pass.
    onnx
        The network as an ONNX Runtime model (:class:`segmentation.onnx_runtime.OrtModel`, crops to
        probabilities); when set, :meth:`score` runs it instead of ``net``.
    """

    net: Any
    config: ClassifierConfig
    sha256: str = ""
    unet_sha256: str = ""
    threshold: float = -1.0
    batch_size: int = 128
    onnx: Any = None

    def __post_init__(self) -> None:
        if self.threshold < 0:
            self.threshold = self.config.threshold

    def score(self, crops: NDArray[np.float32]) -> NDArray[np.float32]:
        """Detection score of each crop ``[N, 2, s, s, s]`` (HU and U-Net probability channels).

        The classifier's nodule probability, blended with the U-Net's peak probability at the
        crop's centre by ``config.unet_weight``.
        """
        x_all = crops[:, : self.config.in_channels]
        out = np.zeros(len(crops), dtype=np.float32)
        for a in range(0, len(crops), self.batch_size):
            x = np.ascontiguousarray(x_all[a : a + self.batch_size], dtype=np.float32)
            out[a : a + len(x)] = self.onnx(x) if self.onnx is not None else self._torch_probability(x)
        return blend_with_unet(out, crops, self.config.unet_weight)

    def _torch_probability(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """The PyTorch network's nodule probability for a batch of crops."""
        import torch

        with torch.inference_mode():
            prob: NDArray[np.float32] = torch.sigmoid(self.net(torch.from_numpy(x))[:, 0]).numpy()
        return prob


def blend_with_unet(
    classifier_prob: NDArray[np.float32], crops: NDArray[np.generic], unet_weight: float
) -> NDArray[np.float32]:
    """``(1 - w) * classifier + w * U-Net peak at the crop centre`` (the classifier's alone for ``w = 0``)."""
    if unet_weight <= 0:
        return classifier_prob
    blended: NDArray[np.float32] = (1.0 - unet_weight) * classifier_prob + unet_weight * centre_probability(
        crops
    )
    return blended


def centre_probability(crops: NDArray[np.generic]) -> NDArray[np.float32]:
    """The U-Net's peak probability in the 3^3 voxels at the centre of each crop ``[N, 2, s, s, s]``."""
    c = crops.shape[-1] // 2
    centre = np.asarray(crops[:, 1, c - 1 : c + 2, c - 1 : c + 2, c - 1 : c + 2], dtype=np.float32)
    peak: NDArray[np.float32] = centre.reshape(len(crops), -1).max(axis=1)
    return peak


def load_classifier(
    weights: Path | None = None, *, card: Path | None = None, build: bool = True
) -> CandidateClassifier:
    """Load the candidate classifier after checking its SHA-256 against its model card.

    With ``build=False`` only its configuration is read (``net`` is ``None``; torch is not imported),
    for a classifier run through ONNX Runtime.

    Raises
    ------
    ModelIntegrityError
        When the file or card is missing, the hash differs, or the file is not a classifier.
    """
    path = Path(weights) if weights is not None else DEFAULT_FP_WEIGHTS
    digest, meta, tensors = read_verified(path, card, with_tensors=build)
    if meta.get("format") != FP_FORMAT or "config" not in meta:
        raise ModelIntegrityError(path, f"not a {FP_FORMAT} file")
    config = ClassifierConfig.from_json(meta["config"])
    net = None
    if build:
        net = load_into(build_classifier(config), tensors, path)
    return CandidateClassifier(net=net, config=config, sha256=digest, unet_sha256=meta.get("unet_sha256", ""))
