"""Short internal names, as the TorchScript exporter wrote them before torch 1.13.

torch >= 1.13 names every node and intermediate tensor after its module path
(`/down_blocks.0/attentions.0/transformer_blocks.0/attn1/MatMul_output_0`). In a tiny model those
strings are most of the file (a 50 k-parameter UNet graph carries ~240 kB of names), so the fixtures
use the older style instead: nodes `<OpType>_<index>`, intermediates `<index>`. Graph input, output
and initializer names are kept, so nothing an engine reads changes.
"""

from __future__ import annotations

import onnx


def compact_internal_names(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {t.name for t in graph.initializer}
    renamed: dict[str, str] = {}
    for index, node in enumerate(graph.node):
        for attribute in node.attribute:
            if attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise ValueError(f"node {node.name} ({node.op_type}) has a subgraph; renaming would break it")
        node.name = f"{node.op_type}_{index}"
        for slot, name in enumerate(node.output):
            if name and name not in keep:
                renamed[name] = str(len(renamed) + 1)
                node.output[slot] = renamed[name]
        for slot, name in enumerate(node.input):
            if name in renamed:
                node.input[slot] = renamed[name]
    del graph.value_info[:]
    return model
