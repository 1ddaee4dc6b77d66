"""Precision policies as plain data: what a model family keeps in fp32 when its graphs are quantized to int8.

A family's export spec supplies an `Int8Policy`; `zsbench.export.quantize` applies it to a graph
(matching rules against node names, traced module paths and weight names) and the export
manifest records `Int8Policy.describe()` as the graph's `graph_policy`. No onnx import here, so
model families can define policies without loading any runtime.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

USER_REASON = "--keep_fp32"  # the reason recorded for the rules a user adds on the command line


class NamedNode(Protocol):
    """What a rule matches: a node's op type and its names (own name, traced modules, weights)."""

    op_type: str

    def names(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class KeepFp32:
    """Nodes matching `pattern` (and `op_type`, when given) stay in fp32, for `reason`."""

    pattern: str
    reason: str
    op_type: str | None = None

    def matches(self, node: NamedNode) -> bool:
        if self.op_type is not None and node.op_type != self.op_type:
            return False
        return any(fnmatch.fnmatchcase(name, self.pattern) for name in node.names())


@dataclass(frozen=True)
class Int8Policy:
    """What an int8 graph quantizes.

    Attributes:
        quantize_op_types: op types ONNX Runtime may quantize; () means every type it supports.
        fp32_outputs: quantized op types whose results stay fp32 (int8 inputs, fp32 result), so
            that no extra rounding sits between them and the next op; () rounds every result
            to int8 too, as ONNX Runtime does by default.
        keep_fp32: rules for nodes of those types that stay in fp32 all the same.
        fp32_ops: manifest lines on what is never quantized because its op type is not in
            `quantize_op_types` (norms, softmax...); they change nothing in the graph.
    """

    quantize_op_types: tuple[str, ...] = ("MatMul", "Gemm")
    fp32_outputs: tuple[str, ...] = ("MatMul", "Gemm")
    keep_fp32: tuple[KeepFp32, ...] = ()
    fp32_ops: tuple[str, ...] = ()

    @classmethod
    def everything(cls) -> Int8Policy:
        """No policy: ONNX Runtime's defaults, every op it can quantize is, results included (what the per-node report is for)."""
        return cls(quantize_op_types=(), fp32_outputs=())

    def with_keep_fp32(self, patterns: Iterable[str]) -> Int8Policy:
        """This policy plus the user's `--keep_fp32 PATTERN` rules."""
        extra = tuple(KeepFp32(pattern, USER_REASON) for pattern in patterns)
        return replace(self, keep_fp32=self.keep_fp32 + extra)

    def describe(self) -> tuple[str, ...]:
        """The policy as manifest lines (`graph_policy`), before it meets a graph."""
        ops = ", ".join(self.quantize_op_types) if self.quantize_op_types else "every op type ONNX Runtime quantizes"
        lines = [f"int8 quantized: {ops}"]
        if self.fp32_outputs:
            lines.append(f"fp32 results of {', '.join(self.fp32_outputs)} (int8 inputs, no rounding of the result)")
        lines += [f"fp32: {describe_rule(rule)}" for rule in self.keep_fp32]
        lines += [f"fp32: {line}" for line in self.fp32_ops]
        return tuple(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Int8Policy:
        return cls(
            quantize_op_types=tuple(data["quantize_op_types"]),
            fp32_outputs=tuple(data["fp32_outputs"]),
            keep_fp32=tuple(KeepFp32(**rule) for rule in data["keep_fp32"]),
            fp32_ops=tuple(data.get("fp32_ops", ())),
        )


def describe_rule(rule: KeepFp32) -> str:
    """``reason (op pattern)``: one rule as the manifest shows it."""
    return f"{rule.reason} ({rule.op_type + ' ' if rule.op_type else ''}{rule.pattern})"
