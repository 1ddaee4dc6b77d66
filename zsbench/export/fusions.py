"""Graph rewrites that let runtimes fuse what the exporter decomposes, with the same arithmetic.

The exporter writes RMSNorm as ``Pow -> ReduceMean -> Add -> Sqrt -> Reciprocal -> Mul(x, .)``
and exact GELU as ``Div -> Erf -> Add -> Mul(0.5, .) -> Mul(x, .)``. ONNX Runtime fuses
RMSNorm into ``SimplifiedLayerNormalization`` only when the normalisation is a ``Div`` by the
square root, and GELU into one ``Gelu`` kernel only when ``x`` is multiplied before the 0.5.
Rewriting those two spots into the patterns it knows makes the CPU graph markedly faster
(fewer, fused kernels) without changing what is computed: x / sqrt(v) instead of
x * (1 / sqrt(v)), and (x * (1 + erf)) * 0.5 instead of x * (0.5 * (1 + erf)) -- the same
values up to rounding, which the parity check measures like everything else.

From opset 23 on, attention is one ``Attention`` node, but the exporter hands it
(batch, heads, seq, head_dim) tensors: a ``Transpose`` before each of q, k and v and one after.
``Attention`` also takes (batch, seq, heads * head_dim) with ``q_num_heads``/``kv_num_heads``,
the layout the projections produce, so the rewrite feeds it that layout through ``Reshape``s,
which move no data. On small widths the transposes were a fifth of ONNX Runtime's CPU time.
Likewise QLLaMA's RoPE, ``x * cos + cat(-x[..., h:], x[..., :h]) * sin`` (slices, a negation,
a concatenation, two products and a sum per tensor), becomes one opset-23 ``RotaryEmbedding``
fed the half-width cos and sin tables and the positions 0..seq-1: a third of the text graph's
time before. Both need ONNX Runtime >= 1.23 and are what fp32 exports use (opset 23); the
fp16 graphs TensorRT reads stay at opset 18 and keep the decomposed forms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx_ir as ir


def _only_use(value: ir.Value, op_type: str) -> ir.Node | None:
    """The single consumer of `value` if it is an `op_type` node, else None."""
    uses = list(value.uses())
    if len(uses) != 1 or value.is_graph_output():
        return None
    node = uses[0][0]
    return node if node.op_type == op_type and node.domain == "" else None


def _constant(value: ir.Value | None) -> float | None:
    """The scalar a value holds when it is a one-element constant."""
    tensor = value.const_value if value is not None else None
    if tensor is None or tensor.size != 1:
        return None
    return float(tensor.numpy().reshape(-1)[0])


def _other_input(node: ir.Node, value: ir.Value) -> ir.Value | None:
    others = [candidate for candidate in node.inputs if candidate is not value]
    return others[0] if len(others) == 1 else None


def _replace_output(graph: ir.Graph, old: ir.Node, new: ir.Node) -> None:
    """Moves `old`'s consumers (and graph-output role) to `new`'s output."""
    result = old.outputs[0]
    replacement = new.outputs[0]
    replacement.dtype, replacement.shape = result.dtype, result.shape
    for consumer, index in list(result.uses()):
        consumer.replace_input_with(index, replacement)
    if result.is_graph_output():
        position = list(graph.outputs).index(result)
        name = result.name
        result.name = f"{name}_replaced"
        replacement.name = name
        graph.outputs[position] = replacement


def _rms_norm_divisions(graph: ir.Graph) -> int:
    """``Sqrt -> Reciprocal -> Mul(x, .)`` becomes ``Div(x, Sqrt)``."""
    import onnx_ir as ir

    count = 0
    for reciprocal in [node for node in graph if node.op_type == "Reciprocal" and node.domain == ""]:
        root = reciprocal.inputs[0]
        multiply = _only_use(reciprocal.outputs[0], "Mul")
        if root is None or root.producer() is None or root.producer().op_type != "Sqrt" or multiply is None:
            continue
        numerator = _other_input(multiply, reciprocal.outputs[0])
        if numerator is None:
            continue
        divide = ir.node("Div", [numerator, root], name=f"{multiply.name}_div")
        graph.insert_before(multiply, divide)
        _replace_output(graph, multiply, divide)
        graph.remove([multiply, reciprocal], safe=True)
        count += 1
    return count


def _gelu_orders(graph: ir.Graph) -> int:
    """``Erf -> Add(1) -> Mul(0.5) -> Mul(x)`` becomes ``Erf -> Add(1) -> Mul(x) -> Mul(0.5)``."""
    import onnx_ir as ir

    count = 0
    for erf in [node for node in graph if node.op_type == "Erf" and node.domain == ""]:
        add = _only_use(erf.outputs[0], "Add")
        half = _only_use(add.outputs[0], "Mul") if add is not None else None
        outer = _only_use(half.outputs[0], "Mul") if half is not None else None
        if outer is None or _constant(_other_input(add, erf.outputs[0])) != 1.0:
            continue
        scale = _other_input(half, add.outputs[0])
        x = _other_input(outer, half.outputs[0])
        if _constant(scale) != 0.5 or x is None:
            continue
        gated = ir.node("Mul", [x, add.outputs[0]], name=f"{outer.name}_gate")
        scaled = ir.node("Mul", [gated.outputs[0], scale], name=f"{outer.name}_half")
        gated.outputs[0].dtype, gated.outputs[0].shape = outer.outputs[0].dtype, outer.outputs[0].shape
        graph.insert_before(half, [gated, scaled])
        _replace_output(graph, outer, scaled)
        graph.remove([outer, half], safe=True)
        count += 1
    return count


_HEADS_TO_AXIS_1 = (0, 2, 1, 3)


def _static_heads(value: ir.Value | None) -> tuple[int, int] | None:
    """(heads, head_dim) of a 4-D (batch, seq, heads, head_dim) value when both are static."""
    shape = value.shape if value is not None else None
    if shape is None or len(shape) != 4 or not isinstance(shape[2], int) or not isinstance(shape[3], int):
        return None
    return shape[2], shape[3]


def _head_transpose_input(value: ir.Value | None) -> ir.Value | None:
    """x when `value` is Transpose(x, perm=(0, 2, 1, 3)) of a 4-D x with a static head count and size."""
    producer = value.producer() if value is not None else None
    if producer is None or producer.op_type != "Transpose" or producer.domain != "":
        return None
    perm = producer.attributes.get("perm")
    if perm is None or tuple(perm.value) != _HEADS_TO_AXIS_1 or _static_heads(producer.inputs[0]) is None:
        return None
    return producer.inputs[0]


def _int64_initializer(graph: ir.Graph, name: str, values: list[int]) -> ir.Value:
    import numpy as np
    import onnx_ir as ir

    if name not in graph.initializers:
        graph.register_initializer(ir.Value(name=name, const_value=ir.tensor(np.array(values, dtype=np.int64), name=name)))
    return graph.initializers[name]


def _merged_heads(graph: ir.Graph, heads: ir.Value, new_nodes: list[ir.Node]) -> ir.Value:
    """`heads` (batch, seq, heads, head_dim) as (batch, seq, heads * head_dim): the 3-D tensor it was
    reshaped from when there is one, else a new Reshape (appended to `new_nodes`)."""
    import onnx_ir as ir

    producer = heads.producer()
    if producer is not None and producer.op_type == "Reshape" and producer.domain == "":
        source = producer.inputs[0]
        if source is not None and source.shape is not None and len(source.shape) == 3 and heads.shape is not None:
            if source.shape[0] == heads.shape[0] and source.shape[1] == heads.shape[1]:
                return source
    flatten = ir.node("Reshape", [heads, _int64_initializer(graph, "zsbench_merge_heads_shape", [0, 0, -1])])
    new_nodes.append(flatten)
    return flatten.outputs[0]


def _split_heads(graph: ir.Graph, merged: ir.Value, heads: int, head_dim: int) -> ir.Node:
    """Reshape (batch, seq, heads * head_dim) -> (batch, seq, heads, head_dim); moves no data."""
    import onnx_ir as ir

    shape = _int64_initializer(graph, f"zsbench_split_heads_shape_{heads}x{head_dim}", [0, 0, heads, head_dim])
    return ir.node("Reshape", [merged, shape])


def _renamed(node: ir.Node, suffix: str) -> str | None:
    """A name for `node`'s replacement (names must stay unique; unnamed nodes stay unnamed)."""
    return f"{node.name}_{suffix}" if node.name else None


def _attention_without_head_transposes(graph: ir.Graph) -> int:
    """``Transpose -> Attention (4-D) -> Transpose`` becomes ``Attention (3-D)`` between Reshapes."""
    import onnx_ir as ir

    count = 0
    for attention in [node for node in graph if node.op_type == "Attention" and node.domain == ""]:
        heads = [_head_transpose_input(value) for value in attention.inputs[:3]]
        output_uses = list(attention.outputs[0].uses())
        unused_extra_outputs = all(not list(value.uses()) for value in attention.outputs[1:])
        after = output_uses[0][0] if len(output_uses) == 1 else None
        if None in heads or after is None or after.op_type != "Transpose" or not unused_extra_outputs:
            continue
        perm = after.attributes.get("perm")
        if perm is None or tuple(perm.value) != _HEADS_TO_AXIS_1 or attention.outputs[0].is_graph_output():
            continue
        (q_heads, _), (kv_heads, _), (_, v_dim) = (_static_heads(value) for value in heads)
        new_nodes: list[ir.Node] = []
        merged = [_merged_heads(graph, value, new_nodes) for value in heads]
        attributes = {name: attr.value for name, attr in attention.attributes.items()}
        attributes.update(q_num_heads=q_heads, kv_num_heads=kv_heads)
        fused = ir.node("Attention", [*merged, *attention.inputs[3:]], attributes, name=_renamed(attention, "3d"))
        unflatten = _split_heads(graph, fused.outputs[0], q_heads, v_dim)
        graph.insert_before(attention, [*new_nodes, fused, unflatten])
        _replace_output(graph, after, unflatten)
        graph.remove([after, attention], safe=True)
        count += 1
    return count


def _producer(value: ir.Value | None, op_type: str) -> ir.Node | None:
    producer = value.producer() if value is not None else None
    return producer if producer is not None and producer.op_type == op_type and producer.domain == "" else None


def _ints(value: ir.Value | None) -> list[int] | None:
    tensor = value.const_value if value is not None else None
    return [int(v) for v in tensor.numpy().reshape(-1)] if tensor is not None else None


def _rotate_half_source(concat: ir.Node, head_dim: int) -> ir.Value | None:
    """x when `concat` is Concat(Neg(x[..., h:]), x[..., :h]) on the last axis (h = head_dim / 2)."""
    if len(concat.inputs) != 2 or concat.attributes.get("axis") is None or concat.attributes["axis"].value not in (-1, 3):
        return None
    negated = _producer(concat.inputs[0], "Neg")
    upper = _producer(negated.inputs[0], "Slice") if negated is not None else None
    lower = _producer(concat.inputs[1], "Slice")
    if upper is None or lower is None or upper.inputs[0] is not lower.inputs[0]:
        return None
    half = head_dim // 2
    for node, (start, end) in ((upper, (half, head_dim)), (lower, (0, half))):
        starts, ends, axes = (_ints(node.inputs[i]) if len(node.inputs) > i else None for i in (1, 2, 3))
        steps = _ints(node.inputs[4]) if len(node.inputs) > 4 else [1]
        if starts != [start] or ends is None or len(ends) != 1 or ends[0] < end or (end == half and ends[0] != half):
            return None
        if axes not in ([3], [-1]) or steps != [1]:
            return None
    return lower.inputs[0]


def _rope_frequencies(table: ir.Value | None, op_type: str) -> ir.Value | None:
    """f when `table` is Unsqueeze(Cos|Sin(Concat(f, f, axis=-1)), axes=[1]): a (seq, 1, head_dim) table
    computed in the graph (the text graph, whose length is dynamic)."""
    unsqueeze = _producer(table, "Unsqueeze")
    trig = _producer(unsqueeze.inputs[0], op_type) if unsqueeze is not None and _ints(unsqueeze.inputs[1]) == [1] else None
    repeated = _producer(trig.inputs[0], "Concat") if trig is not None else None
    if repeated is None or len(repeated.inputs) != 2 or repeated.inputs[0] is not repeated.inputs[1]:
        return None
    return repeated.inputs[0] if repeated.attributes["axis"].value in (-1, 1) else None


def _constant_half(graph: ir.Graph, table: ir.Value | None) -> ir.Value | None:
    """The (seq, head_dim / 2) half of a constant (seq, 1, head_dim) table whose halves are equal (InternVL-G's
    query path, whose length is static, gets its tables folded into constants)."""
    import numpy as np
    import onnx_ir as ir

    tensor = table.const_value if table is not None else None
    values = tensor.numpy() if tensor is not None else None
    if values is None or values.ndim != 3 or values.shape[1] != 1 or values.shape[2] % 2:
        return None
    half = values.shape[2] // 2
    if not np.array_equal(values[..., :half], values[..., half:]):
        return None
    name = f"{table.name}_rope_half"
    if name not in graph.initializers:
        graph.register_initializer(ir.Value(name=name, const_value=ir.tensor(np.ascontiguousarray(values[:, 0, :half]), name=name)))
    return graph.initializers[name]


def _half_tables(graph: ir.Graph, cos_table: ir.Value | None, sin_table: ir.Value | None,
                 new_nodes: list[ir.Node]) -> tuple[ir.Value, ir.Value] | None:
    """RotaryEmbedding's (seq, head_dim / 2) cos and sin tables, from the exporter's (seq, 1, head_dim) ones."""
    import onnx_ir as ir

    frequencies = _rope_frequencies(cos_table, "Cos")
    if frequencies is not None and frequencies is _rope_frequencies(sin_table, "Sin"):
        cos, sin = ir.node("Cos", [frequencies]), ir.node("Sin", [frequencies])
        new_nodes += [cos, sin]
        return cos.outputs[0], sin.outputs[0]
    cos_half, sin_half = _constant_half(graph, cos_table), _constant_half(graph, sin_table)
    return (cos_half, sin_half) if cos_half is not None and sin_half is not None else None


def _rotary_embeddings(graph: ir.Graph) -> int:
    """``x * cos + rotate_half(x) * sin`` on (batch, seq, heads, head_dim) becomes one ``RotaryEmbedding``."""
    import onnx_ir as ir

    count = 0
    tables: dict[tuple[int, int], tuple[ir.Value, ir.Value, ir.Value]] = {}  # cos, sin, position_ids
    for add in [node for node in graph if node.op_type == "Add" and node.domain == ""]:
        products = [_producer(value, "Mul") for value in add.inputs]
        if None in products or len(products) != 2:
            continue
        for direct, rotated in (products, products[::-1]):
            concat = next((_producer(v, "Concat") for v in rotated.inputs if _producer(v, "Concat") is not None), None)
            if concat is None:
                continue
            x = next((v for v in direct.inputs if _static_heads(v) is not None), None)
            heads = _static_heads(x)
            if heads is None or _rotate_half_source(concat, heads[1]) is not x:
                continue
            cos_table, sin_table = _other_input(direct, x), _other_input(rotated, concat.outputs[0])
            new_nodes: list[ir.Node] = []
            merged = _merged_heads(graph, x, new_nodes)
            key = (id(cos_table), id(sin_table))
            if key not in tables:  # once per graph: the tables and positions every layer shares
                half_tables = _half_tables(graph, cos_table, sin_table, new_nodes)
                if half_tables is None:
                    continue
                tables[key] = (*half_tables, _positions(graph, merged, new_nodes))
            rope = ir.node("RotaryEmbedding", [merged, *tables[key]], {"interleaved": 0, "num_heads": heads[0]},
                           name=_renamed(add, "rope"))
            rope.outputs[0].dtype, rope.outputs[0].shape = merged.dtype, merged.shape
            unflatten = _split_heads(graph, rope.outputs[0], *heads)
            graph.insert_before(add, [*new_nodes, rope, unflatten])
            _replace_output(graph, add, unflatten)
            graph.remove(add, safe=True)
            count += 1
            break
    return count


def _positions(graph: ir.Graph, merged: ir.Value, new_nodes: list[ir.Node]) -> ir.Value:
    """position_ids (batch, seq) = 0..seq-1 in every row, from the shape of `merged` (batch, seq, width)."""
    import onnx_ir as ir

    zero, one = _int64_initializer(graph, "zsbench_zero", [0]), _int64_initializer(graph, "zsbench_one", [1])
    batch_seq = ir.node("Shape", [merged], {"start": 0, "end": 2})
    seq = ir.node("Shape", [merged], {"start": 1, "end": 2})
    stop = ir.node("Squeeze", [seq.outputs[0]])
    start, step = ir.node("Squeeze", [zero]), ir.node("Squeeze", [one])
    positions = ir.node("Range", [start.outputs[0], stop.outputs[0], step.outputs[0]])
    rows = ir.node("Expand", [positions.outputs[0], batch_seq.outputs[0]], name="zsbench_position_ids")
    new_nodes.extend([batch_seq, seq, stop, start, step, positions, rows])
    return rows.outputs[0]


def rewrite_for_fusion(model: ir.Model) -> tuple[str, ...]:
    """Applies the rewrites in the module docstring in place; returns what was done, for the manifest."""
    from onnx_ir.passes.common import RemoveUnusedNodesPass

    graph = model.graph
    opset = model.opset_imports.get("", 0)
    done = {
        "RMSNorm written as x / sqrt(mean(x^2) + eps) so runtimes fuse it": _rms_norm_divisions(graph),
        "exact GELU written as (x * (1 + erf(x / sqrt(2)))) * 0.5 so runtimes fuse it": _gelu_orders(graph),
        # Opset 23 ops: RotaryEmbedding first, so that Attention then finds its inputs' 3-D sources.
        "RoPE (x * cos + rotate_half(x) * sin) as one RotaryEmbedding": _rotary_embeddings(graph) if opset >= 23 else 0,
        "Attention fed (batch, seq, heads * head_dim) through Reshapes, not head Transposes": _attention_without_head_transposes(graph),
    }
    # The rewrites leave the nodes they replaced without readers.
    RemoveUnusedNodesPass()(model)
    return tuple(f"{line} ({count} nodes)" for line, count in done.items() if count)
