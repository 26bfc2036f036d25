"""Benchmark: whole-study nodule segmentation on a 512 x 512 x 300 phantom (2 CPU threads).

Budget (design.md section 6): <= 6 s, and >= 10x faster than MONAI's default sliding window over the
raw volume, measured in the same run with the same network; peak RSS <= 3 GB. Ours runs on both
backends (ONNX Runtime, the default, with its graphs exported beforehand as on any run after the
first; and PyTorch), alternating, best of two each. Each runs in its own process so its peak RSS is
its own. Run with
``make benchmarks`` (prints the figures).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

OURS = r"""
import json, os, sys, time
from pathlib import Path
os.environ["SEGMENTATION_ORT_THREADS"] = "2"
import numpy as np
from segmentation.inference import DEFAULT_WEIGHTS, NoduleSegmenter, load_model, segment_nodules, with_onnx
from segmentation.model import ModelConfig, build_unet
d = np.load(sys.argv[1])
hu, sp = d["hu"], tuple(float(s) for s in d["spacing"])
backend, cache = sys.argv[2], Path(sys.argv[3])
if backend == "pytorch":
    import torch
    torch.set_num_threads(2)
if DEFAULT_WEIGHTS.exists():
    seg = load_model(backend=backend, onnx_cache=cache)
else:
    seg = NoduleSegmenter(build_unet(ModelConfig()).eval(), ModelConfig())
    seg = with_onnx(seg, cache) if backend == "onnxruntime" else seg
t = time.perf_counter()
res = segment_nodules(hu, sp, segmenter=seg)
dt = time.perf_counter() - t
# VmHWM is this process's own peak (ru_maxrss would carry the parent's over fork + exec)
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024.0
print(json.dumps({"seconds": dt, "peak_rss_mb": rss, "nodules": len(res.nodules)}))
"""

BASELINE = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(2)
from monai.inferers import sliding_window_inference
from segmentation.inference import DEFAULT_WEIGHTS, NoduleSegmenter, load_model
from segmentation.model import ModelConfig, build_unet, normalize_hu
d = np.load(sys.argv[1])
hu = d["hu"]
if DEFAULT_WEIGHTS.exists():
    seg = load_model()
else:
    seg = NoduleSegmenter(build_unet(ModelConfig()).eval(), ModelConfig())
t = time.perf_counter()
x = torch.from_numpy(normalize_hu(hu))[None, None]
with torch.inference_mode():
    # MONAI's defaults (overlap 0.25, constant blending, one window per batch) over the raw grid
    out = sliding_window_inference(x, roi_size=(96, 96, 96), sw_batch_size=1, predictor=seg.net)
    prob = torch.softmax(out, dim=1)[0, 1].numpy()
dt = time.perf_counter() - t
# VmHWM is this process's own peak (ru_maxrss would carry the parent's over fork + exec)
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024.0
print(json.dumps({"seconds": dt, "peak_rss_mb": rss}))
"""


def _run(script: str, *args: Path | str) -> dict[str, float]:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], cwd=root, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_bench_whole_study_segmentation(tmp_path: Path) -> None:
    from segmentation.phantom.chest import make_chest_phantom

    ph = make_chest_phantom(4242, shape_zyx=(300, 512, 512), spacing_zyx_mm=(1.0, 0.7, 0.7), n_nodules=(4, 4))
    data = tmp_path / "study.npz"
    np.savez(data, hu=ph.hu, spacing=np.array(ph.spacing_zyx_mm))
    del ph
    cache = tmp_path / "onnx"
    _run(OURS, data, "onnxruntime", cache)  # exports the ONNX graphs (the first run's one-off cost)
    # the two backends alternate, best of two each, so that a burst of load on the shared machine
    # does not decide between them
    runs = [_run(OURS, data, backend, cache) for backend in ("onnxruntime", "pytorch") * 2]
    ours = min(runs[0::2], key=lambda r: r["seconds"])
    torch_ours = min(runs[1::2], key=lambda r: r["seconds"])
    base = _run(BASELINE, data)
    ratio = base["seconds"] / ours["seconds"]
    print(
        f"\nsegmentation 512x512x300: ours (ONNX Runtime) {ours['seconds']:.1f} s (peak RSS "
        f"{ours['peak_rss_mb']:.0f} MB, {ours['nodules']:.0f} nodules); ours (PyTorch) "
        f"{torch_ours['seconds']:.1f} s ({torch_ours['nodules']:.0f} nodules); MONAI default sliding window "
        f"on the raw grid {base['seconds']:.1f} s (peak RSS {base['peak_rss_mb']:.0f} MB); speed-up "
        f"x{ratio:.2f} (PyTorch x{base['seconds'] / torch_ours['seconds']:.2f}; ONNX Runtime "
        f"x{torch_ours['seconds'] / ours['seconds']:.2f} faster than PyTorch) "
        "(budget: <= 6 s, >= x10, <= 3000 MB)"
    )
    assert ours["nodules"] == torch_ours["nodules"]
    assert ours["peak_rss_mb"] <= 3000
    assert ratio >= 10.0
