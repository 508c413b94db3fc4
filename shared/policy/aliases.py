"""Azure Policy aliases from a snapshot of Azure's own alias data (pure; reads one file lazily).

The snapshot (``shared/data/policy-aliases.zip``) holds ``alias,path`` rows, one zip
member per resource-provider namespace (``microsoft.storage.csv``): the index by type.
Nothing is read at import (``import function_app`` pays nothing); a namespace's member
is read and parsed when an alias of it is first asked for, so a catalog that uses a
dozen namespaces reads a dozen small members, not 65k rows. A plain ``alias,path``
CSV (optionally gzip) is read too, grouped by namespace in one pass.

An alias listed with several paths resolves to its first one (the snapshot's
order: the default path first).
"""
from __future__ import annotations

import gzip
import logging
import threading
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Mapping

SNAPSHOT = Path(__file__).resolve().parents[1] / "data" / "policy-aliases.zip"

log = logging.getLogger(__name__)


class AliasSnapshotError(ValueError):
    """The snapshot file cannot be read or is not ``alias,path`` rows; the message names the file."""


class AliasSnapshot:
    """Alias -> JSON path from a ``alias,path`` CSV (optionally gzip), indexed by namespace on demand."""

    def __init__(self, path: Path | str = SNAPSHOT) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._chunks: dict[str, list[str]] | None = None  # namespace (lower) -> raw rows
        self._tables: dict[str, dict[str, str]] = {}

    def _load(self) -> dict[str, list[str]]:
        if self._chunks is None:
            with self._lock:
                if self._chunks is None:
                    self._chunks = self._read()
        return self._chunks

    def _read(self) -> dict[str, list[str]]:
        if zipfile.is_zipfile(self.path):
            return _ZipChunks(self.path)  # members read on demand
        try:
            raw = self.path.read_bytes()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            text = raw.decode("utf-8")
        except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
            raise AliasSnapshotError(f"{self.path}: cannot read the alias snapshot: {exc}") from None
        chunks: dict[str, list[str]] = {}
        for line in text.splitlines():
            slash = line.find("/")
            if slash <= 0:
                if line.strip():
                    raise AliasSnapshotError(f"{self.path}: not an 'alias,path' row: {line[:80]!r}")
                continue
            key = line[:slash].lower()
            rows = chunks.get(key)
            if rows is None:
                chunks[key] = rows = []
            rows.append(line)
        log.debug("alias snapshot %s: %d namespaces", self.path, len(chunks))
        return chunks

    def namespace(self, namespace: str) -> Mapping[str, str]:
        """Every alias of one namespace (lower-case alias -> path)."""
        key = namespace.lower()
        table = self._tables.get(key)
        if table is None:
            table = {}
            for line in self._load().get(key, ()):
                alias, sep, path = line.partition(",")
                if not sep or not path:
                    raise AliasSnapshotError(f"{self.path}: not an 'alias,path' row: {line[:80]!r}")
                table.setdefault(alias.lower(), path.strip())
            self._tables[key] = table
        return table

    def get(self, alias: str) -> str | None:
        """The JSON path of ``alias`` (case-insensitive), or None when the snapshot lacks it."""
        namespace = alias.split("/", 1)[0]
        return self.namespace(namespace).get(alias.strip().lower()) if "/" in alias else None

    __call__ = get

    def namespaces(self) -> list[str]:
        return sorted(iter(self._load()))

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._load().values())


class _ZipChunks(dict):
    """namespace -> rows, read from the zip member ``<namespace>.csv`` the first time it is asked for."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        try:
            with zipfile.ZipFile(path) as archive:
                self.members = {n[:-4].lower(): n for n in archive.namelist() if n.endswith(".csv")}
        except (OSError, zipfile.BadZipFile) as exc:
            raise AliasSnapshotError(f"{path}: cannot read the alias snapshot: {exc}") from None

    def get(self, key: str, default=None):  # noqa: ANN001 - dict's signature
        if key not in self and key in self.members:
            try:
                with zipfile.ZipFile(self.path) as archive:
                    text = archive.read(self.members[key]).decode("utf-8")
            except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
                raise AliasSnapshotError(f"{self.path}: cannot read {self.members[key]}: {exc}") from None
            self[key] = [line for line in text.splitlines() if line.strip()]
        return super().get(key, default)

    def __iter__(self):
        return iter(sorted(self.members))

    def values(self):  # noqa: ANN201
        return [self.get(k) for k in sorted(self.members)]


_default: AliasSnapshot | None = None
_default_lock = threading.Lock()


def default_snapshot() -> AliasSnapshot:
    """The shipped snapshot, one per process (``ALIAS_SNAPSHOT`` may point at a refreshed one)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                import os

                _default = AliasSnapshot(os.environ.get("ALIAS_SNAPSHOT") or SNAPSHOT)
    return _default


def chain(*sources: Callable[[str], str | None] | None) -> Callable[[str], str | None]:
    """One resolver from several: the first that knows the alias answers."""
    present = [s for s in sources if s is not None]

    def resolve(alias: str) -> str | None:
        for source in present:
            path = source(alias)
            if path:
                return path
        return None

    return resolve


def write_snapshot(rows: Iterable[tuple[str, str]], out: Path | str) -> int:
    """Write ``alias,path`` rows: a zip of one member per namespace when ``out`` ends in .zip, else a CSV
    (gzip when it ends in .gz). Row order is kept. Returns the number of rows written."""
    out = Path(out)
    by_namespace: dict[str, list[str]] = {}
    count = 0
    for alias, path in rows:
        if "," in alias or "\n" in alias or "\n" in path or "/" not in alias or alias.startswith("/"):
            raise AliasSnapshotError(f"alias {alias!r} with path {path!r} cannot be written as an 'alias,path' row")
        by_namespace.setdefault(alias.split("/", 1)[0].lower(), []).append(f"{alias},{path}")
        count += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if out.suffix == ".zip":
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for namespace in sorted(by_namespace):
                info = zipfile.ZipInfo(f"{namespace}.csv", date_time=(2024, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, "\n".join(by_namespace[namespace]) + "\n")
    else:
        data = "".join("\n".join(v) + "\n" for v in by_namespace.values()).encode("utf-8")
        tmp.write_bytes(gzip.compress(data, mtime=0) if out.suffix == ".gz" else data)
    tmp.replace(out)
    return count
