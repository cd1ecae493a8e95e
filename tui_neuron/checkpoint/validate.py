"""Reading untrusted files: regular files only, bounded JSON, safetensors headers checked before any tensor.

Every file the tool reads (checkpoints, resume states, sessions, results, vocabularies)
goes through these helpers, so a FIFO, a nesting bomb, a lying header or a pickle is
one UserError line rather than a hang, a RecursionError or a multi-GB allocation.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import struct
import zipfile
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import torch
from safetensors import SafetensorError, safe_open

from ..errors import UserError

MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 64 << 20
MAX_HEADER_BYTES = 100 << 20
MAX_TENSORS = 10_000  # far more than any model here holds; a header listing more is refused before it is read
FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}
_DTYPE_SIZES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I8": 1, "U8": 1, "I16": 2, "I32": 4, "I64": 8, "BOOL": 1,
                "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}

S = TypeVar("S", bound=msgspec.Struct)


def require_regular_file(path: Path, what: str) -> int:
    """The file's size; a missing path, a folder, a FIFO or a device is a UserError (reading those can hang)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except OSError as e:
        raise UserError(f"cannot open {what} {path}: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{what} {path} is a folder; give a file")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{what} {path} is not a regular file (a pipe, socket or device); give a file")
    return st.st_size


def read_bytes(path: Path, what: str, limit: int = MAX_JSON_BYTES) -> bytes:
    size = require_regular_file(path, what)
    if size > limit:
        raise UserError(f"{what} {path} is {size:,} bytes, more than the {limit:,} this tool reads")
    try:
        return path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror}") from None


# a JSON string (its closing quote optional, so an unterminated one ends the scan without a retry) or a bracket
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]+|\\.)*"?|[\[\]{}]')


def json_depth_ok(text: str, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Count brackets outside strings, so a nesting bomb is refused before json.loads recurses into it.
    (A regular expression does the scanning, in one pass: a vocabulary is tens of kilobytes of strings.)"""
    depth = 0
    for token in _STRING_OR_BRACKET.findall(text):
        if token in ("[", "{"):
            depth += 1
            if depth > max_depth:
                return False
        elif token in ("]", "}"):
            depth -= 1
    return True


def parse_json_limited(text: str | bytes, what: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{what} is not UTF-8 text") from None
    if len(text) > MAX_JSON_BYTES:
        raise UserError(f"{what} is larger than {MAX_JSON_BYTES >> 20} MB")
    if not json_depth_ok(text, max_depth):
        raise UserError(f"{what} is nested more than {max_depth} levels deep")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError) as e:
        raise UserError(f"{what} is not valid JSON ({str(e).splitlines()[0]})") from None


def read_json_file(path: Path, what: str) -> Any:
    return parse_json_limited(read_bytes(path, what), f"{what} {path}")


def validated(schema: type[S], data: Any, what: str) -> S:
    """A schema (a msgspec Struct) from untrusted data, types strict; the first problem is one line naming the
    field ("config: hidden: expected int <= 8192")."""
    try:
        return msgspec.convert(data, schema, strict=True)
    except msgspec.ValidationError as e:
        problem, _, where = str(e).partition(" - at `$")
        where = one_line(where.rstrip("`").lstrip("."))
        problem = one_line(problem.replace("`", ""))
        field = f"{where}: " if where else ""  # a check across fields (__post_init__) names its fields itself
        raise UserError(f"{what}: {field}{problem[:1].lower()}{problem[1:]}") from None


def one_line(text: str, limit: int = 200) -> str:
    """Text from a file (a field's name, a value) made fit for a one-line error: escapes for what is not
    printable (a newline in a key), and at most `limit` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def looks_like_json(path: Path) -> bool:
    """A results file given where a checkpoint belongs: it opens with a JSON object or list, where a safetensors
    file opens with its header's length (8 bytes, little-endian, so zero bytes for any header under 16 MiB)."""
    with open(path, "rb") as f:
        head = f.read(64)
    return head.lstrip()[:1] in (b"{", b"[") and b"\x00" not in head


def looks_like_text(path: Path) -> bool:
    """A README, a corpus or a config given where a checkpoint belongs: its first bytes are printable UTF-8, where a
    safetensors file's header length holds zero bytes (so this never mistakes a checkpoint, even a truncated one)."""
    with open(path, "rb") as f:
        head = f.read(256)
    try:
        text = head.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:  # a multi-byte character cut at the 256th byte is still text
        text = head[: e.start].decode("utf-8") if e.start > len(head) - 4 else ""
    return bool(text.strip()) and all(c.isprintable() or c in "\t\r\n" for c in text)


def looks_like_pickle(path: Path) -> bool:
    """A pickle starts with PROTO (0x80) and a protocol 2..5; torch.save writes a zip holding data.pkl."""
    with open(path, "rb") as f:
        head = f.read(4)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if head == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                return any(n.endswith("data.pkl") for n in z.namelist())
        except (zipfile.BadZipFile, OSError):
            return False
    return False


def _header(path: Path, size: int) -> dict:
    """The safetensors JSON header, checked against the file size (it lies in mutated files)."""
    if size < 8:
        raise ValueError("shorter than a safetensors header")
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > MAX_HEADER_BYTES or n + 8 > size:
            raise ValueError("header length is beyond the end of the file")
        raw = f.read(n)
    entries = raw.count(b'"dtype"')  # every tensor entry has one; metadata strings hold it escaped (\\"dtype\\")
    if entries > MAX_TENSORS:
        raise ValueError(f"the header lists {entries:,} tensors, more than the {MAX_TENSORS:,} this tool reads")
    if not json_depth_ok(raw.decode("utf-8", errors="replace"), 4):
        raise ValueError("header is nested too deeply")
    header = json.loads(raw)
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    data_len = size - 8 - n
    if len(header) > MAX_TENSORS + 1:
        raise ValueError(f"the header lists {len(header) - 1:,} tensors, more than the {MAX_TENSORS:,} this tool reads")
    for name, info in header.items():
        if name == "__metadata__":
            continue
        name = one_line(name, 80)
        if not isinstance(info, dict) or not isinstance(info.get("dtype"), str) or info["dtype"] not in _DTYPE_SIZES:
            raise ValueError(f"tensor {name} has no known dtype")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if not (isinstance(shape, list) and all(isinstance(d, int) and 0 <= d < 1 << 40 for d in shape)):
            raise ValueError(f"tensor {name} has a malformed shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise ValueError(f"tensor {name} has malformed data offsets")
        numel = 1
        for d in shape:
            numel *= d
        if not 0 <= offsets[0] <= offsets[1] <= data_len or offsets[1] - offsets[0] != numel * _DTYPE_SIZES[info["dtype"]]:
            raise ValueError(f"tensor {name}'s size disagrees with its shape and dtype")
    return header


def read_safetensors(path: Path, what: str = "checkpoint", floats_only: bool = False
                     ) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Metadata and tensors of a safetensors file, with the header validated first; pickles are named as such."""
    meta, _ = read_header(path, what, floats_only)
    return meta, load_tensors(path, what)


def read_header(path: Path, what: str = "checkpoint", floats_only: bool = False) -> tuple[dict[str, str], dict]:
    """The metadata and the tensor entries (name -> dtype, shape, offsets) of a safetensors file, checked against
    the file's size, before any tensor is read."""
    size = require_regular_file(path, what)
    try:
        header = _header(path, size)
    except (ValueError, UnicodeDecodeError, struct.error) as e:
        if looks_like_pickle(path):
            raise UserError(f"{path} is a pickle / torch.save file; tui-neuron never unpickles. Re-save the weights "
                            "with safetensors.torch.save_file (or use `tui-neuron import` for a .pt state_dict)") from None
        if looks_like_json(path):
            raise UserError(f"{path} is a JSON file (results or a config?), not a .safetensors {what}: give the "
                            f"{what}'s .safetensors file here") from None
        if looks_like_text(path):
            raise UserError(f"{path} is a text file, not a .safetensors {what}: give the {what}'s .safetensors file "
                            "here") from None
        raise UserError(f"{path} is not a readable .safetensors {what} (truncated or corrupt: {e})") from None
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise UserError(f"{path}: the safetensors metadata must map names to strings")
    if floats_only:
        for name, info in header.items():
            if name != "__metadata__" and info["dtype"] not in FLOAT_DTYPES:
                raise UserError(f"{path}: tensor {one_line(name, 80)} is {info['dtype']}; a model's weights must be "
                                "floating point")
    return meta, {k: v for k, v in header.items() if k != "__metadata__"}


def load_tensors(path: Path, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file whose header `read_header` checked."""
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path} is not a readable .safetensors {what} (truncated or corrupt: {reason})") from None
    return tensors


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes in name order: detects flipped bits in the weights."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
