"""The refiner network (PyTorch; training time only) and its ONNX export.

A small U-Net over the face box at a quarter of its resolution: a stride-4 4x4 convolution
stem (space-to-depth and a projection in one rank-4 op), two stride-2 stages, a decoder with
nearest-neighbour upsampling and skip connections, and two heads:

  * ``flow``: a 3x3 convolution at a quarter resolution, upsampled bilinearly to full
    resolution: a smooth correction of the warp's motion, in output pixels (where the warped
    face is resampled, ``_refine.py``);
  * ``residual``: a stride-4 4x4 transposed convolution back to full resolution
    (depth-to-space): RGB added after the resampling (mouth interior, lids, shading).

Both heads start at zero, so an untrained refiner is the identity (pure warp).  About 0.55 M
parameters (2.2 MB FP32) and 0.5 GMAC per 256x256 box.  :func:`apply` is the composition the
runtime performs (bilinear resample of the warped face by the flow, border padding, then the
residual); training optimises its output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..generator._refine import N_INPUTS

__all__ = ["RefinerNet", "apply", "export_onnx"]


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding=k // 2), nn.ReLU(inplace=True))


class RefinerNet(nn.Module):
    def __init__(self, widths: tuple[int, int, int] = (48, 96, 128)) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.widths = widths
        self.stem = nn.Sequential(nn.Conv2d(N_INPUTS, c1, 4, 4), nn.ReLU(inplace=True))
        self.e1 = _conv(c1, c1)
        self.e2 = nn.Sequential(_conv(c1, c2, stride=2), _conv(c2, c2))
        self.e3 = nn.Sequential(_conv(c2, c3, stride=2), _conv(c3, c3))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.d2 = nn.Sequential(_conv(c3 + c2, c2, k=1), _conv(c2, c2))
        self.d1 = nn.Sequential(_conv(c2 + c1, c1, k=1), _conv(c1, c1))
        self.head = nn.ConvTranspose2d(c1, 3, 4, 4)
        self.flow = nn.Conv2d(c1, 2, 3, padding=1)
        self.up4 = nn.Upsample(scale_factor=4, mode="bilinear", align_corners=False)
        for layer in (self.head, self.flow):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(flow, residual)``: (N, 2, H, W) pixels (x, y) and (N, 3, H, W) RGB in [0, 1] units."""
        # the warp's motion is a few hundredths of a face unit; where the pixel comes from an
        # atlas it is a meaningless jump (clipped to +-1): zero it there and bring the rest to O(1)
        motion = x[:, 3:5] * ((1.0 - x[:, 5:6]) * MOTION_GAIN)
        x = torch.cat([x[:, :3], motion, x[:, 5:6]], 1)
        s = self.e1(self.stem(x))
        m = self.e2(s)
        d = self.e3(m)
        m = self.d2(torch.cat([self.up(d), m], 1))
        s = self.d1(torch.cat([self.up(m), s], 1))
        return self.up4(self.flow(s)) * FLOW_GAIN, self.head(s)


#: the motion input channels are multiplied by this (outside the atlases)
MOTION_GAIN = 10.0
#: the flow head's output is scaled by this (pixels per unit), so it learns at the pace of the residual
FLOW_GAIN = 4.0


def apply(image: torch.Tensor, flow: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """The refined face: ``image`` (N, 3, H, W) resampled at each pixel plus ``flow`` (pixels,
    bilinear, border padding), plus ``residual``, clipped to [0, 1]."""
    n, _, h, w = image.shape
    ys = torch.arange(h, dtype=image.dtype).view(1, h, 1).expand(n, h, w)
    xs = torch.arange(w, dtype=image.dtype).view(1, 1, w).expand(n, h, w)
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    sampled = F.grid_sample(image, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="border", align_corners=True)
    return (sampled + residual).clamp(0, 1)


def export_onnx(net: RefinerNet, path, metadata: dict | None = None) -> None:
    """Write ``net`` as an opset-17 ONNX graph with input ``inputs`` and outputs ``flow`` and
    ``residual`` (dynamic height and width, multiples of 16), plus the training record as metadata."""
    import json

    import onnx

    net = net.eval()
    dummy = torch.zeros(1, N_INPUTS, 64, 64)
    torch.onnx.export(
        net,
        (dummy,),
        str(path),
        input_names=["inputs"],
        output_names=["flow", "residual"],
        dynamic_axes={"inputs": {2: "h", 3: "w"}, "flow": {2: "h", 3: "w"}, "residual": {2: "h", 3: "w"}},
        opset_version=17,
        dynamo=False,
    )
    model = onnx.load(str(path))
    model.producer_name = "facelink.train"
    if metadata:
        p = model.metadata_props.add()
        p.key = "facelink.refiner"
        p.value = json.dumps(metadata, sort_keys=True)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
