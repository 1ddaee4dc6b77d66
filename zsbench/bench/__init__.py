"""`zsbench bench`: encoder throughput of every available backend and precision, side by side in one run.

    config.py  BenchConfig: what to measure (the command's options; no torch)
    rows.py    BenchRow: one measurement; the table, the `--output` file and its reader (no torch)
    peaks.py   the peak rate each row is a fraction of: a matrix multiply in the row's runtime and precision
    timing.py  timing a step repeatedly, the GPU waited for
    run.py     run_bench: load the encoders, measure them in interleaved rounds

Attributes are imported on first use (`zsbench.lazy`): `zsbench bench --help` and `zsbench report` do not load torch.
"""

from zsbench.lazy import lazy_attributes

_EXPORTS = {
    "BenchConfig": "zsbench.bench.config",
    "BenchRow": "zsbench.bench.rows",
    "create_random_checkpoint": "zsbench.bench.run",
    "format_table": "zsbench.bench.rows",
    "read_rows": "zsbench.bench.rows",
    "run_bench": "zsbench.bench.run",
    "write_rows": "zsbench.bench.rows",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_attributes(__name__, _EXPORTS)
