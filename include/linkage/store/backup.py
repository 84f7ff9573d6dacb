"""Backups in mongodump's layout, so the standard `mongorestore` can restore them.

`<dir>/<db>/<collection>.bson[.gz]` holds the documents as concatenated BSON and
`<collection>.metadata.json[.gz]` the indexes, exactly as mongodump writes them
(`mongorestore --gzip --dir <dir>` restores a gzipped one). `manifest.json` beside
them records per collection the document count and the SHA-256 of the
uncompressed BSON stream; `verify` re-reads the files and checks both.

A backup is `full` (every document of the collections: a migration's) or
`targeted` (exactly the documents a run is about to write, by `_id`: a
reconcile's, whose cost then follows the drift, not the database). `restore`
puts a full backup's collections back whole, and a targeted one's documents
back one by one, leaving every other document as it is.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

import bson
from bson import ObjectId, json_util
from bson.codec_options import CodecOptions
from bson.errors import InvalidBSON
from bson.raw_bson import RawBSONDocument
from pydantic import BaseModel
from pymongo import InsertOne, ReplaceOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, OperationFailure

from linkage.core.errors import LinkageError
from linkage.core.settings import DEFAULT_WRITE_CHUNK
from linkage.core.words import size
from linkage.mongo.concerns import refuse_unconfirmed

MANIFEST = "manifest.json"
_RAW = CodecOptions(document_class=RawBSONDocument)


class CollectionDump(BaseModel):
    count: int
    sha256: str
    file: str


class Scope(StrEnum):
    FULL = "full"
    TARGETED = "targeted"


class Manifest(BaseModel):
    run_id: str
    db: str
    created_at: datetime
    gzip: bool
    collections: dict[str, CollectionDump]
    scope: Scope = Scope.FULL


def estimate_bytes(db: Database, collections: list[str], compressed: bool,
                   documents: dict[str, int] | None = None) -> int:
    """Room a backup needs: the collections' BSON size (`collStats`), or for `documents` (per collection, a
    targeted backup) that many average documents; halved when gzipped (gzip at level 1 shrinks BSON three- to
    fivefold; halving keeps a margin)."""
    size = 0
    for name in collections:
        stats = db.command("collStats", name)
        size += int(stats.get("size", 0)) if documents is None else \
            int(stats.get("avgObjSize", 0) or 0) * documents.get(name, 0)
    return size // 2 if compressed else size


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
        raise LinkageError(f"backup directory {directory} has {size(free)} free; "
                           f"the backup needs about {size(needed_bytes)}")


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


#: Documents of a targeted backup read per query (`_id: {$in: ...}`, an index look-up on every server).
ID_CHUNK = 1000


def _raw_documents(db: Database, name: str, ids: list[Any] | None) -> Iterator[RawBSONDocument]:
    """A whole collection in `_id` order, or just the documents with these `_id`s (a chunk at a time)."""
    coll = db.get_collection(name, codec_options=_RAW)
    if ids is None:
        yield from coll.find().sort("_id", 1).batch_size(2000)
        return
    for start in range(0, len(ids), ID_CHUNK):
        yield from coll.find({"_id": {"$in": ids[start:start + ID_CHUNK]}}).sort("_id", 1)


def dump(db: Database, collections: list[str], root: Path, run_id: str, *, compressed: bool = True,
         ids: dict[str, list[Any]] | None = None, created_at: datetime | None = None) -> Manifest:
    """Write each collection (or, with `ids`, exactly those documents of each: a targeted backup) and the
    manifest; returns the manifest. A backup already at `root` keeps its other collections: a run backs up
    each relation before it writes it, into the run's one backup.

    A write that fails (the disk filled up meanwhile) ends with a one-line reason naming the path.
    """
    try:
        return _dump(db, collections, root, run_id, compressed, ids, created_at)
    except OSError as exc:
        raise LinkageError(f"backup to {root} failed: {exc.strerror or exc}") from None


def _dump(db: Database, collections: list[str], root: Path, run_id: str, compressed: bool,
          ids: dict[str, list[Any]] | None, created_at: datetime | None) -> Manifest:
    folder = root / db.name
    folder.mkdir(parents=True, exist_ok=True)
    entries = load_manifest(root).collections if (root / MANIFEST).exists() else {}
    for name in collections:
        target = folder / f"{name}.bson{_suffix(compressed)}"
        digest, count = hashlib.sha256(), 0
        with _open(target, "wb", compressed) as out:
            for doc in _raw_documents(db, name, None if ids is None else ids.get(name, [])):
                out.write(doc.raw)
                digest.update(doc.raw)
                count += 1
        with _open(folder / f"{name}.metadata.json{_suffix(compressed)}", "wb", compressed) as meta:
            meta.write(json_util.dumps(_metadata(db, name), json_options=json_util.CANONICAL_JSON_OPTIONS).encode())
        entries[name] = CollectionDump(count=count, sha256=digest.hexdigest(), file=str(target.relative_to(root)))
    manifest = Manifest(run_id=run_id, db=db.name, created_at=created_at or datetime.now(timezone.utc),
                        gzip=compressed, collections=entries, scope=Scope.FULL if ids is None else Scope.TARGETED)
    (root / MANIFEST).write_text(manifest.model_dump_json(indent=2))
    return manifest


def size_on_disk(root: Path) -> int:
    """Bytes the backup's files take."""
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


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


class RestoreRefused(LinkageError):
    """A restore put back all it could, but the server refused some documents: they are named, never counted."""


def _refused(coll: Collection, ops: list[Any], ids: list[Any]) -> list[Any]:
    """Send `ops` unordered in one command; the `_id`s of those the server refused (a unique index, a validator).
    A command that fails whole, naming no statement (FerretDB), is sent again a statement at a time."""
    try:
        coll.bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        refuse_unconfirmed(exc)
        return [ids[error["index"]] for error in exc.details.get("writeErrors", [])]
    except OperationFailure:
        if len(ops) == 1:
            return list(ids)
        return [refused for op, oid in zip(ops, ids, strict=True) for refused in _refused(coll, [op], [oid])]
    return []


def _put_back(coll: Collection, batch: list[RawBSONDocument], scope: Scope, write_chunk: int) -> list[Any]:
    """Put a batch back; the `_id`s the server refused. A full backup's documents are inserted into the emptied
    collection; a targeted one's each replace its document (every other document is left as it is), in commands
    of `write_chunk` statements (`linkage.mongo.bulk`: FerretDB hangs on long update commands)."""
    ids = [document_id(bytes(doc.raw)) for doc in batch]
    if scope == Scope.FULL:
        return _refused(coll, [InsertOne(doc) for doc in batch], ids)
    ops: list[Any] = [ReplaceOne({"_id": oid}, doc, upsert=True) for oid, doc in zip(ids, batch, strict=True)]
    return [refused for start in range(0, len(ops), write_chunk)
            for refused in _refused(coll, ops[start:start + write_chunk], ids[start:start + write_chunk])]


def restore(root: Path, db: Database, *, batch_size: int = 1000,
            write_chunk: int = DEFAULT_WRITE_CHUNK) -> dict[str, int]:
    """Put a backup back (verified first): a full one replaces each backed-up collection, a targeted one each
    backed-up document. Returns how many documents of each collection were put back, exactly; when the server
    refused any (a unique index the app's later writes now occupy), everything else is still put back and
    `RestoreRefused` names them."""
    manifest = verify(root)
    restored: dict[str, int] = {}
    refused: dict[str, list[Any]] = {}
    for name, entry in manifest.collections.items():
        coll = db[name]
        if manifest.scope == Scope.FULL:
            coll.delete_many({})
        batch: list[RawBSONDocument] = []
        for raw in documents(root, entry, manifest.gzip):
            batch.append(RawBSONDocument(raw))
            if len(batch) >= batch_size:
                refused.setdefault(name, []).extend(_put_back(coll, batch, manifest.scope, write_chunk))
                batch = []
        if batch:
            refused.setdefault(name, []).extend(_put_back(coll, batch, manifest.scope, write_chunk))
        restored[name] = entry.count - len(refused.get(name, []))
    if any(refused.values()):
        named = "; ".join(f"{name}: {len(ids)} (_id {', '.join(map(str, ids[:5]))}{', ...' if len(ids) > 5 else ''})"
                          for name, ids in refused.items() if ids)
        raise RestoreRefused(f"restore of {root} refused documents: {named}; restored "
                             f"{', '.join(f'{name} {n}' for name, n in restored.items())}")
    return restored
