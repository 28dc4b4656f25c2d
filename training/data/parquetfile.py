"""Read a Parquet file row by row, within the limits of streams.py.

Before any row is read, the sizes the file declares (uncompressed, per row group) are held
to the upload cap and to the compression ratio limit. Rows are then read in small batches
(about 1 MB as declared, at most 100 rows) with dictionary columns decoded, and what each
batch expands to is counted against the same limits: a dictionary can repeat one long text
in every row, which the declared sizes do not show. A row over the record limit is skipped
(`record_too_large`) without being turned into Python objects.
"""

from .streams import BAD, MAX_RECORD_BYTES, NO_ISSUES, RATIO_FLOOR, check_expansion, too_large


class ParquetRows:
    """The rows of one Parquet file: iterate for (row, record or BAD, issues)."""

    def __init__(self, f, size: int, max_bytes: int | None, stop_after: int | None):
        import pyarrow.parquet as pq

        self.file = pq.ParquetFile(f)
        self.columns = list(self.file.schema_arrow.names)
        self.size, self.max_bytes, self.stop_after = size, max_bytes, stop_after
        self.expanded = 0  # bytes of the rows materialised so far

    def __iter__(self):
        meta = self.file.metadata
        groups = [meta.row_group(g) for g in range(meta.num_row_groups)]
        check_expansion(self.size, sum(g.total_byte_size for g in groups), self.max_bytes)
        n = 0
        for g, group in enumerate(groups):
            for batch in self.file.iter_batches(batch_size=_batch_rows(group), row_groups=[g]):
                if self.stop_after is not None and self.expanded >= self.stop_after:
                    return
                batch = _dense(batch)
                self.expanded += batch.nbytes
                check_expansion(self.size, self.expanded, self.max_bytes)
                whole = batch.to_pylist() if batch.nbytes <= MAX_RECORD_BYTES else None
                for i in range(batch.num_rows):
                    n += 1
                    row = batch.slice(i, 1) if whole is None else None
                    if row is not None and row.nbytes > MAX_RECORD_BYTES:
                        yield n, BAD, too_large(row.nbytes)
                    else:
                        record = whole[i] if whole is not None else row.to_pylist()[0]
                        yield n, _drop_nulls(record), NO_ISSUES


def _dense(batch):
    """A batch with its dictionary columns decoded, so its size is what Python will hold."""
    import pyarrow as pa

    if not any(pa.types.is_dictionary(c.type) for c in batch.columns):
        return batch
    columns = [
        c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _batch_rows(group) -> int:
    """Rows per batch: about 1 MB as declared, at most 100. A small row group (one the ratio
    check lets through) reads few enough rows at a time that even one long value its
    dictionary repeats in every row expands to at most 16 MB before it is counted."""
    declared = max(1, group.total_byte_size)
    rows = min(100, max(1, MAX_RECORD_BYTES * group.num_rows // declared))
    if declared <= RATIO_FLOOR:
        rows = min(rows, max(1, 16 * MAX_RECORD_BYTES // declared))
    return rows


def _drop_nulls(record: dict) -> dict:
    """Parquet gives every struct the union of all keys (missing ones as None): drop those
    inside message lists so optional keys such as `weight` or `name` stay optional."""
    for key, value in record.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            record[key] = [
                {k: v for k, v in m.items() if v is not None} if isinstance(m, dict) else m
                for m in value
            ]
    return record
