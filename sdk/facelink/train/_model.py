"""The refiner network (PyTorch; training time only) and its ONNX export.

A small U-Net over the face box at a quarter of its resolution: a stride-4 4x4 convolution
stem (space-to-depth and a projection in one rank-4 op), two stride-2 stages, a decoder with
nearest-neighbour upsampling and skip connections, and a stride-4 4x4 transposed convolution
back to full resolution (depth-to-space) that outputs the RGB residual.  The last layer starts
at zero, so an untrained refiner is the identity (pure warp).  About 0.55 M parameters
(2.2 MB FP32) and 0.5 GMAC per 256x256 box.
"""

from __future__ import annotations

import torch
from torch import nn

from ..generator._refine import N_INPUTS

__all__ = ["RefinerNet", "export_onnx"]


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
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.e1(self.stem(x))
        m = self.e2(s)
        d = self.e3(m)
        m = self.d2(torch.cat([self.up(d), m], 1))
        s = self.d1(torch.cat([self.up(m), s], 1))
        return self.head(s)


def export_onnx(net: RefinerNet, path, metadata: dict | None = None) -> None:
    """Write ``net`` as an opset-17 ONNX graph with input ``inputs`` and output ``residual``
    (dynamic height and width, multiples of 16), plus the training record as metadata."""
    import json

    import onnx

    net = net.eval()
    dummy = torch.zeros(1, N_INPUTS, 64, 64)
    torch.onnx.export(
        net,
        (dummy,),
        str(path),
        input_names=["inputs"],
        output_names=["residual"],
        dynamic_axes={"inputs": {2: "h", 3: "w"}, "residual": {2: "h", 3: "w"}},
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
