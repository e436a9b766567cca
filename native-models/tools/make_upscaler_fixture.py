"""Builds test/fixtures/upscalers/tiny-esrgan-x4.onnx: a tiny ESRGAN (RRDBNet) super-resolution model.

The network is basicsr's `RRDBNet` (what Real-ESRGAN's RealESRGAN_x4plus and ESRGAN checkpoints are),
written out here at a tiny width (num_feat 8, one RRDB block, grow 4) with seeded random weights, and
exported the way chaiNNer / spandrel export upscalers to ONNX: one input "input" [N, 3, H, W] with RGB in
[0, 1], one output "output" [N, 3, 4H, 4W], batch/height/width dynamic, TorchScript exporter, opset 14.
A reference run goes to upscaler-image.npy / upscaler-expected.npy (float32 RGB bytes, [H, W, 3]) so the
engine's run can be checked against torch.

    native-models/.venv/bin/python native-models/tools/make_upscaler_fixture.py
"""
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import nn

OUT = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "upscalers"


class ResidualDenseBlock(nn.Module):
    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """basicsr.archs.rrdbnet_arch.RRDBNet, scale 4 (the x4 branch: two nearest 2× upsamplings)."""

    def __init__(self, num_feat: int = 8, num_block: int = 1, num_grow_ch: int = 4) -> None:
        super().__init__()
        self.conv_first = nn.Conv2d(3, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


def main() -> None:
    torch.manual_seed(0)
    model = RRDBNet().eval()
    with torch.no_grad():
        # Centre the output in [0, 1] so few pixels clamp (torch's default init would give ≈ 0).
        model.conv_last.bias.add_(0.5)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "tiny-esrgan-x4.onnx"
    x = torch.rand(1, 3, 16, 16)
    torch.onnx.export(
        model, (x,), str(path), input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "height", 3: "width"}},
        opset_version=14, dynamo=False,
    )
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(12, 20, 3), dtype=np.uint8)
    inp = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        ref = model(inp)[0].clamp(0, 1).permute(1, 2, 0).numpy()
    expected = np.round(ref * 255).astype(np.uint8)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": inp.numpy()})[0]
    assert np.abs(np.clip(got[0].transpose(1, 2, 0), 0, 1) - ref).max() < 1e-4
    np.save(OUT / "upscaler-image.npy", image.astype(np.float32))
    np.save(OUT / "upscaler-expected.npy", expected.astype(np.float32))
    print(f"{path}: {path.stat().st_size} bytes; reference {expected.shape}")


if __name__ == "__main__":
    main()
