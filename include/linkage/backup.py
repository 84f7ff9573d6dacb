"""Backups in mongodump's layout, so the standard `mongorestore` can restore them.

`<dir>/<db>/<collection>.bson[.gz]` holds the documents as concatenated BSON and
`<collection>.metadata.json[.gz]` the indexes, exactly as mongodump writes them
(`mongorestore --gzip --dir <dir>` restores a gzipped one). `manifest.json` beside
them records per collection the document count and the SHA-256 of the
uncompressed BSON stream; `verify` re-reads the files and checks both.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

import bson
from bson import ObjectId, json_util
from bson.codec_options import CodecOptions
from bson.errors import InvalidBSON
from bson.raw_bson import RawBSONDocument
from pydantic import BaseModel
from pymongo.database import Database

from linkage.errors import LinkageError

MANIFEST = "manifest.json"
_RAW = CodecOptions(document_class=RawBSONDocument)


class CollectionDump(BaseModel):
    count: int
    sha256: str
    file: str


class Manifest(BaseModel):
    run_id: str
    db: str
    created_at: datetime
    gzip: bool
    collections: dict[str, CollectionDump]


def estimate_bytes(db: Database, collections: list[str], compressed: bool) -> int:
    """Room a backup of these collections needs: their BSON size (`collStats`), halved when gzipped.

    gzip at level 1 shrinks BSON three- to fivefold; halving keeps a margin.
    """
    size = sum(int(db.command("collStats", name).get("size", 0)) for name in collections)
    return size // 2 if compressed else size


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def check_target(directory: Path, needed_bytes: int, *, create: bool = False) -> None:
    """Refuse a backup directory that is missing, a file, read-only or too full, naming it.

    `create` allows making a missing directory (the default one under linkage's home).
    """
    if directory.exists() and not directory.is_dir():
        raise LinkageError(f"backup directory {directory} is a file, not a directory")
    if not directory.exists():
        if not create:
            raise LinkageError(f"backup directory {directory} does not exist (create it, or mount its volume)")
        directory.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".linkage-probe-"):
            pass
    except OSError as exc:
        raise LinkageError(f"backup directory {directory} is not writable: {exc.strerror}") from None
    free = shutil.disk_usage(directory).free
    if free < needed_bytes:
        raise LinkageError(f"backup directory {directory} has {_megabytes(free)} free; "
                           f"the backup needs about {_megabytes(needed_bytes)}")


def _open(path: Path, mode: Literal["rb", "wb"], compressed: bool) -> BinaryIO:
    if compressed:
        return cast(BinaryIO, gzip.GzipFile(path, mode, compresslevel=1))  # a GzipFile is a binary stream
    return open(path, mode)


def _suffix(compressed: bool) -> str:
    return ".gz" if compressed else ""


def _metadata(db: Database, name: str) -> dict[str, Any]:
    indexes = [{"v": index.get("v", 2), "key": dict(index["key"]), "name": index["name"],
                **{k: index[k] for k in ("unique", "sparse", "partialFilterExpression") if k in index}}
               for index in db[name].list_indexes()]
    return {"options": {}, "indexes": indexes, "collectionName": name, "type": "collection"}


def dump(db: Database, collections: list[str], root: Path, run_id: str, *, compressed: bool = True) -> Manifest:
    """Write each collection in `_id` order and the manifest; returns the manifest.

    A write that fails (the disk filled up meanwhile) ends with a one-line reason naming the path.
    """
    try:
        return _dump(db, collections, root, run_id, compressed)
    except OSError as exc:
        raise LinkageError(f"backup to {root} failed: {exc.strerror or exc}") from None


def _dump(db: Database, collections: list[str], root: Path, run_id: str, compressed: bool) -> Manifest:
    folder = root / db.name
    folder.mkdir(parents=True, exist_ok=True)
    entries: dict[str, CollectionDump] = {}
    for name in collections:
        target = folder / f"{name}.bson{_suffix(compressed)}"
        digest, count = hashlib.sha256(), 0
        with _open(target, "wb", compressed) as out:
            for doc in db.get_collection(name, codec_options=_RAW).find().sort("_id", 1).batch_size(2000):
                out.write(doc.raw)
                digest.update(doc.raw)
                count += 1
        with _open(folder / f"{name}.metadata.json{_suffix(compressed)}", "wb", compressed) as meta:
            meta.write(json_util.dumps(_metadata(db, name), json_options=json_util.CANONICAL_JSON_OPTIONS).encode())
        entries[name] = CollectionDump(count=count, sha256=digest.hexdigest(), file=str(target.relative_to(root)))
    manifest = Manifest(run_id=run_id, db=db.name, created_at=datetime.now(timezone.utc),
                        gzip=compressed, collections=entries)
    (root / MANIFEST).write_text(manifest.model_dump_json(indent=2))
    return manifest


def load_manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    if not path.exists():
        raise LinkageError(f"no backup manifest at {path}")
    return Manifest.model_validate_json(path.read_text())


def documents(root: Path, entry: CollectionDump, compressed: bool) -> Iterator[bytes]:
    """The raw BSON of each dumped document, in dump order."""
    with _open(root / entry.file, "rb", compressed) as stream:
        for doc in bson.decode_file_iter(stream, codec_options=_RAW):
            yield bytes(doc.raw)


_OBJECT_ID_FIRST = b"\x07_id\x00"  # an ObjectId `_id` as the first element: how drivers write documents


def document_id(raw: bytes) -> Any:
    """A dumped document's `_id`, without decoding the rest of it when it is the usual leading ObjectId."""
    if raw[4:9] == _OBJECT_ID_FIRST:
        return ObjectId(raw[9:21])
    return bson.decode(raw)["_id"]


def verify(root: Path) -> Manifest:
    """Re-read every dumped collection; raise LinkageError on any mismatch or unreadable byte."""
    manifest = load_manifest(root)
    for name, entry in manifest.collections.items():
        digest, count = hashlib.sha256(), 0
        try:
            for raw in documents(root, entry, manifest.gzip):
                digest.update(raw)
                count += 1
        except (OSError, EOFError, zlib.error, InvalidBSON) as exc:
            raise LinkageError(f"backup {root} is corrupt: {name} cannot be read ({exc})") from None
        if count != entry.count or digest.hexdigest() != entry.sha256:
            raise LinkageError(f"backup {root} is corrupt: {name} has {count} documents "
                               f"(manifest: {entry.count}) or a different checksum")
    return manifest


def restore(root: Path, db: Database, *, batch_size: int = 1000) -> dict[str, int]:
    """Replace each backed-up collection in `db` with its backup (verified first)."""
    manifest = verify(root)
    restored: dict[str, int] = {}
    for name, entry in manifest.collections.items():
        coll = db[name]
        coll.delete_many({})
        batch: list[RawBSONDocument] = []
        for raw in documents(root, entry, manifest.gzip):
            batch.append(RawBSONDocument(raw))
            if len(batch) >= batch_size:
                coll.insert_many(batch, ordered=False)
                batch = []
        if batch:
            coll.insert_many(batch, ordered=False)
        restored[name] = entry.count
    return restored
