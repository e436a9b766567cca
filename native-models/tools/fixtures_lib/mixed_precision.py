"""fp16 conversion the way ORT's `optimize_pipeline.py --float16` / Olive's optimized SD folders do it:
`convert_float_to_float16(keep_io_types=False, op_block_list=[])`, so graph inputs and outputs become
float16 too. Graph fusions are left out on purpose: the fused contrib ops they introduce (GroupNorm,
BiasSplitGelu, ...) only have CUDA kernels, and the fixtures must run on the CPU provider."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnxruntime.transformers.float16 import convert_float_to_float16


def convert_model_file_to_fp16(source: Path, target: Path, external_data_name: str | None) -> None:
    model = onnx.load(source.as_posix())  # resolves external data next to the source
    converted = convert_float_to_float16(model, keep_io_types=False, op_block_list=[])
    target.parent.mkdir(parents=True, exist_ok=True)
    if external_data_name is None:
        onnx.save_model(converted, target.as_posix())
    else:
        onnx.save_model(
            converted,
            target.as_posix(),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=external_data_name,
            convert_attribute=False,
        )
