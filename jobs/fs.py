"""File access that works the same on local disk and on an object store.

pyarrow's filesystems understand local paths, s3://, gs://, hdfs:// and
abfs://, so landing and generation never assume a POSIX path.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass

from pyarrow import fs as pafs

_CHUNK = 1 << 20


def _resolve(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in path:
        # Spark speaks s3a://; pyarrow speaks s3://. Same bucket, same key.
        return pafs.FileSystem.from_uri(path.replace("s3a://", "s3://", 1))
    return pafs.LocalFileSystem(), path


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int


def list_files(root: str) -> list[FileInfo]:
    """Every regular file under root, sorted by path; [] if root is absent."""
    filesystem, base = _resolve(root)
    info = filesystem.get_file_info(base)
    if info.type == pafs.FileType.NotFound:
        return []
    selector = pafs.FileSelector(base, recursive=True)
    scheme = root.split("://", 1)[0] + "://" if "://" in root else ""
    found = [
        FileInfo(path=scheme + i.path if scheme and not i.path.startswith(scheme) else i.path, size=i.size)
        for i in filesystem.get_file_info(selector)
        if i.type == pafs.FileType.File
    ]
    return sorted(found, key=lambda f: f.path)


def read_chunks(path: str) -> Iterator[bytes]:
    """The bytes exactly as stored: pyarrow would otherwise gunzip a .gz file behind our back."""
    filesystem, p = _resolve(path)
    with filesystem.open_input_stream(p, compression=None) as stream:
        while chunk := stream.read(_CHUNK):
            yield chunk


def is_gzip(path: str) -> bool:
    return path.lower().endswith(".gz")


def open_text(path: str, encoding: str) -> io.TextIOWrapper:
    """A text stream over a file, gunzipped if its name ends in .gz.

    Lines end at "\\n" only and are returned untranslated, so a line counted
    here is a line counted by a byte scan, and csv sees the raw "\\r\\n".
    """
    filesystem, p = _resolve(path)
    stream = filesystem.open_input_stream(p, compression="gzip" if is_gzip(path) else None)
    return io.TextIOWrapper(stream, encoding=encoding, newline="\n")


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    for chunk in read_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str, data: bytes) -> None:
    filesystem, p = _resolve(path)
    filesystem.create_dir(p.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(p) as out:
        out.write(data)


def remove_tree(path: str) -> None:
    filesystem, p = _resolve(path)
    if filesystem.get_file_info(p).type != pafs.FileType.NotFound:
        filesystem.delete_dir(p)
