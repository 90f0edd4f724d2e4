"""The helper process that creates a long import's scene files (see `importer.SceneFiles`).

Run as ``python -I -S _scene_writer.py FOLDER``; it imports nothing but the standard library. It
reads frames from stdin, each a header (`HEADER`: the name's length, then the data's), the file
name and the file's bytes, and writes each file into FOLDER. A name must be a scene file's
(``scene_0001.json``): nothing else, and nothing outside FOLDER, is written. At the end of stdin it
exits 0. On the first error it prints ``errno<TAB>name`` (errno 0 for a bad frame) on stdout and
exits 1 without writing anything more.
"""

from __future__ import annotations

import os
import re
import struct
import sys
from typing import BinaryIO

HEADER = struct.Struct("<HI")
_NAME = re.compile(rb"scene_[0-9]{1,9}\.json")


def _read(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


def run(folder: str, stream: BinaryIO, report: BinaryIO) -> int:
    """Write the frames of ``stream`` into ``folder``; the exit status."""
    name = b""
    try:
        while True:
            header = stream.read(HEADER.size)
            if not header:
                return 0
            if len(header) != HEADER.size:
                raise EOFError
            name_size, data_size = HEADER.unpack(header)
            name = _read(stream, name_size)
            if not _NAME.fullmatch(name):
                report.write(b"0\tnot a scene file name\n")
                return 1
            data = memoryview(_read(stream, data_size))
            fd = os.open(os.path.join(folder, name.decode("ascii")), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                while data:
                    data = data[os.write(fd, data) :]
            finally:
                os.close(fd)
    except EOFError:
        report.write(b"0\ta frame ended early\n")
    except OSError as exc:
        report.write(b"%d\t%s\n" % (exc.errno or 0, name))
    return 1


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer))
