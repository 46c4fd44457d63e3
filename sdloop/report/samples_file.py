"""Writing an ensemble's per-draw tables: ``samples.parquet`` and ``claims_draws.parquet``.

``SampleWriter`` appends each chunk's tables (``sdloop.experiments.samples.chunk_tables``) as
Parquet row groups, so memory stays that of a chunk however many draws there are, in draw
order whatever order chunks finish in (chunks that finish early wait in memory: at most the
chunks in flight). Files are written under temporary names and renamed when complete; the
samples file's schema metadata (key ``sdloop``) holds ``metadata(design, space)``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from sdloop.experiments.samples import CLAIMS, SAMPLES
from sdloop.report.output import publish_mode


class SampleWriter:
    """Appends chunk tables to Parquet files in ``folder``, in draw order."""

    def __init__(self, folder: Path, meta: dict) -> None:
        self.folder = Path(folder)
        self.meta = meta
        self.pending: dict[int, tuple] = {}
        self.next = 0
        self.writers: dict[str, tuple] = {}  # file name -> (ParquetWriter, temporary path)

    def add(self, index: int, tables: tuple) -> None:
        """Chunk ``index``'s (samples, claims); written once every earlier chunk is."""
        self.pending[index] = tables
        while self.next in self.pending:
            samples, claims = self.pending.pop(self.next)
            self._append(SAMPLES, samples)
            if claims is not None:
                self._append(CLAIMS, claims)
            self.next += 1

    def _append(self, name: str, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if name not in self.writers:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=self.folder)
            os.close(fd)
            schema = table.schema.with_metadata({**(table.schema.metadata or {}),
                                                 b"sdloop": json.dumps(self.meta).encode()})
            self.writers[name] = (pq.ParquetWriter(tmp, schema, compression="zstd"), tmp)
        writer, _ = self.writers[name]
        writer.write_table(table.cast(writer.schema))

    def close(self) -> list[Path]:
        """Finish the files and move them into place."""
        done = []
        for name, (writer, tmp) in self.writers.items():
            writer.close()
            publish_mode(tmp)
            os.replace(tmp, self.folder / name)
            done.append(self.folder / name)
        self.writers = {}
        return done

    def abort(self) -> None:
        for writer, tmp in self.writers.values():
            try:
                writer.close()
            finally:
                Path(tmp).unlink(missing_ok=True)
        self.writers = {}
