"""Classical lung mask against the real CIP lung label map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segmentation.errors import InvalidVolumeError
from segmentation.lung import lung_mask

CIP = Path(__file__).resolve().parents[3] / "shared" / "data" / "cip-chest-ct64"
if not CIP.exists():  # a clone elsewhere than beside shared/
    CIP = Path("/work/shared/data/cip-chest-ct64")


@pytest.mark.skipif(not (CIP / "lm-64.nrrd").exists(), reason="shared CIP data not present")
def test_lung_mask_dice_on_real_cip_ct() -> None:
    import SimpleITK as sitk  # noqa: N813

    img = sitk.ReadImage(str(CIP / "ct-64.nrrd"))
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(CIP / "lm-64.nrrd"))) > 0
    hu = sitk.GetArrayFromImage(img)
    spacing = img.GetSpacing()[::-1]
    m = lung_mask(hu, spacing)
    dice = 2.0 * float((ref & (m > 0)).sum()) / float(ref.sum() + (m > 0).sum())
    assert dice >= 0.90, dice
    # identity direction: x index grows towards the patient's left -> left lung (2) at high x
    assert np.nonzero(m == 1)[2].mean() < np.nonzero(m == 2)[2].mean()


def test_lung_mask_on_phantom_splits_left_and_right() -> None:
    from segmentation.phantom.chest import make_chest_phantom

    ph = make_chest_phantom(2, shape_zyx=(40, 128, 128), spacing_zyx_mm=(7.0, 2.8, 2.8), nodules=[])
    m = lung_mask(ph.hu, ph.spacing_zyx_mm)
    for lab in (1, 2):
        ref = ph.lung_mask == lab
        dice = 2.0 * float((ref & (m == lab)).sum()) / float(ref.sum() + (m == lab).sum())
        assert dice > 0.9, (lab, dice)


def test_lung_mask_rejects_bad_input() -> None:
    with pytest.raises(InvalidVolumeError):
        lung_mask(np.zeros((4, 4)), (1.0, 1.0, 1.0))
    with pytest.raises(InvalidVolumeError):
        lung_mask(np.zeros((4, 4, 4)), (1.0, 0.0, 1.0))
    assert not lung_mask(np.full((8, 16, 16), 40.0), (1.0, 1.0, 1.0)).any()
