"""Issue 18, items 12 and 13 and the fuzz rule: PNG/JPEG decompression bombs are refused from their header,
and seeded mutations of PNG/JPEG files and of run configs (YAML/JSON) give a clear InputError or a valid
result, never another exception, a crash or a blown memory budget. Everything runs in a worker process
whose address space is limited (RLIMIT_AS), so a reader that expands an input is caught, not the machine."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS is POSIX")

REPO = Path(__file__).resolve().parents[1]
N = 120
SEED = 20261207
LIMIT_MB = 2048  # the worker's address space (SimpleITK + numpy need ~1 GB of it)

_WORKER = r'''
import json, resource, sys, traceback
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]) << 20, int(sys.argv[1]) << 20))
from pathlib import Path
from MedGradeCoreLib.errors import InputError
what, files = sys.argv[2], sys.argv[3:]
if what == "image":
    from MedGradePredictLib.breast.readers import read_breast_image
else:
    from MedGradeTrainLib.runner.config import read_config_file, resolve_config
for f in files:
    try:
        if what == "image":
            vol, _ = read_breast_image(f)  # the reader of PNG/JPEG ultrasound and mammography files
            out = f"image {vol.GetSize()}"
        else:
            cfg = resolve_config(read_config_file(f), f)
            json.dumps(cfg, default=str)
            out = "config"
        rec = {"file": f, "outcome": out}
    except InputError as exc:
        rec = {"file": f, "outcome": "input_error" if f in str(exc) else f"unnamed: {exc}", "error": str(exc)[:300]}
    except BaseException as exc:
        rec = {"file": f, "outcome": "other: " + "".join(traceback.format_exception_only(type(exc), exc)).strip()[-300:]}
    print(json.dumps(rec), flush=True)
hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM")) if Path("/proc/self/status").is_file() else 0
print(json.dumps({"maxrss_mb": hwm / 1024}), flush=True)
'''


def _run(what: str, files: list[Path]) -> tuple[dict[str, dict], float]:
    """Outcome per file; a worker that dies marks its current file as a crash and a new one goes on."""
    outcomes: dict[str, dict] = {}
    rss = 0.0
    todo = [str(f) for f in files]
    while todo:
        proc = subprocess.run([sys.executable, "-c", _WORKER, str(LIMIT_MB), what, *todo], capture_output=True,
                              text=True, timeout=300)
        for line in proc.stdout.splitlines():
            if not line.startswith("{"):  # a native library's own chatter
                continue
            rec = json.loads(line)
            if "maxrss_mb" in rec:
                rss = max(rss, rec["maxrss_mb"])
            else:
                outcomes[rec["file"]] = rec
        todo = [f for f in todo if f not in outcomes]
        if proc.returncode != 0 and todo:
            outcomes[todo[0]] = {"outcome": f"crash (exit {proc.returncode}): {proc.stderr[-300:]}"}
            todo = todo[1:]
    return outcomes, rss


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(path: Path, width: int = 50000, height: int = 50000) -> Path:
    """A small PNG whose header declares ``width`` x ``height`` 8-bit grey pixels (first rows only stored:
    a decoder allocates the whole image from the header)."""
    rows = zlib.compress(b"\0" * (width + 1) * max(1, 4_000_000 // (width + 1)), 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b""))
    return path


def _seed_images(folder: Path) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(SEED)
    grey = (rng.random((48, 64)) * 255).astype(np.uint8)
    out = []
    for name, arr, fmt in (("grey.png", grey, "PNG"), ("rgb.png", np.stack([grey] * 3, -1), "PNG"),
                           ("grey.jpg", grey, "JPEG"), ("rgb.jpg", np.stack([grey, grey // 2, grey], -1), "JPEG")):
        Image.fromarray(arr).save(folder / name, fmt)
        out.append(folder / name)
    return out


def _set_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    i = data.find(b"\xff\xc0")
    if i < 0:
        return data
    return data[:i + 5] + struct.pack(">HH", height, width) + data[i + 9:]


def _set_png_size(data: bytes, width: int, height: int) -> bytes:
    ihdr = struct.pack(">II", width, height) + data[24:29]
    return data[:8] + _chunk(b"IHDR", ihdr) + data[33:]


def _mutate(data: bytes, rng: np.random.Generator, png: bool) -> bytes:
    buf = bytearray(data)
    how = int(rng.integers(5))
    if how == 0:
        for _ in range(int(rng.integers(1, 8))):
            buf[int(rng.integers(len(buf)))] = int(rng.integers(256))
    elif how == 1:
        return bytes(buf[: int(rng.integers(0, len(buf)))])
    elif how == 2:  # a hostile declared size (PNG with a valid CRC, so the decoder believes it)
        w, h = (int(v) for v in rng.choice([0, 1, 2, 65535, 1 << 20, (1 << 31) - 1, 50000], 2))
        return _set_png_size(data, w, h) if png else _set_jpeg_size(data, min(w, 65535), min(h, 65535))
    elif how == 3:
        pos = int(rng.integers(len(buf)))
        buf[pos:pos + 32] = rng.integers(0, 256, size=len(buf[pos:pos + 32]), dtype=np.uint8).tobytes()
    else:
        for _ in range(int(rng.integers(1, 9))):
            buf[int(rng.integers(len(buf)))] ^= 1 << int(rng.integers(8))
    return bytes(buf)


def _report(outcomes: dict[str, dict], n: int) -> None:
    bad = {f: o for f, o in outcomes.items() if not (o["outcome"] in ("input_error", "config")
                                                    or o["outcome"].startswith("image"))}
    assert len(outcomes) == n
    assert not bad, "\n".join(f"{Path(f).name}: {o['outcome']}" for f, o in sorted(bad.items())[:10])
    assert sum(o["outcome"] == "input_error" for o in outcomes.values()) >= n // 10  # the mutations bite


def test_png_and_jpeg_bombs_are_refused_before_decoding(tmp_path):
    from PIL import Image

    bombs = [png_bomb(tmp_path / "bomb.png"), png_bomb(tmp_path / "wide.png", 1 << 24, 20)]
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "small.jpg")
    jpeg = tmp_path / "bomb.jpg"
    jpeg.write_bytes(_set_jpeg_size((tmp_path / "small.jpg").read_bytes(), 65000, 65000))
    outcomes, rss = _run("image", [*bombs, jpeg])
    for f in (*bombs, jpeg):
        o = outcomes[str(f)]
        assert o["outcome"] == "input_error", o
        assert "declares" in o["error"] or f.name == "wide.png", o  # libpng itself refuses a 2^24-wide row
    assert rss < 600, f"the worker reached {rss:.0f} MB reading a bomb"


def test_fuzzed_png_and_jpeg_files(tmp_path):
    seeds = _seed_images(tmp_path)
    files = []
    for i in range(N):
        src = seeds[i % len(seeds)]
        rng = np.random.default_rng([SEED, i])
        out = tmp_path / f"m{i:03d}{src.suffix}"
        out.write_bytes(_mutate(src.read_bytes(), rng, src.suffix == ".png"))
        files.append(out)
    outcomes, rss = _run("image", files)
    _report(outcomes, N)
    assert rss < 1200


HOSTILE_VALUES = [None, [], {}, -1, 0, 10 ** 400, 1e308, "x" * 5000, True, "nan", [[[]]], {"a": {"b": {}}},
                  "../../etc/passwd", 2.5, "cuda:99", {"name": 5}]


def _config_mutants(folder: Path, rng: np.random.Generator) -> list[Path]:
    import yaml

    bases = [yaml.safe_load((REPO / "configs" / "tiny-toy.yaml").read_text()),
             json.loads((REPO / "configs" / "tiny-grading.json").read_text())]
    out = []
    for i in range(N):
        cfg = json.loads(json.dumps(bases[i % 2]))
        how = int(rng.integers(4))
        if how <= 1:  # a random value anywhere replaced with a hostile one
            node, key = cfg, None
            for _ in range(int(rng.integers(1, 4))):
                keys = list(node) if isinstance(node, dict) else []
                if not keys:
                    break
                key = keys[int(rng.integers(len(keys)))]
                if isinstance(node[key], dict) and rng.random() < 0.6:
                    node = node[key]
                else:
                    break
            if key is not None:
                node[key] = HOSTILE_VALUES[int(rng.integers(len(HOSTILE_VALUES)))]
            text = yaml.safe_dump(cfg) if i % 2 == 0 else json.dumps(cfg)
        elif how == 2:  # text-level damage
            text = yaml.safe_dump(cfg) if i % 2 == 0 else json.dumps(cfg)
            buf = bytearray(text.encode())
            for _ in range(int(rng.integers(1, 6))):
                buf[int(rng.integers(len(buf)))] = int(rng.choice(list(b"{}[]:,&*!\"'\n\t -#%@`|>")))
            text = buf.decode("utf-8", "replace")
        else:  # structural attacks: deep nesting, aliases, tags, huge keys
            attacks = ["train: " + "[" * 3000 + "]" * 3000, '{"train": ' + "[" * 100000 + "]" * 100000 + "}",
                       "a: &a [1,2]\nkind: {name: toy-regression, x: *a}", "kind: !!python/object/apply:os.system [id]",
                       "kind: {name: toy-regression}\n" + "k" * 200000 + ": 1", "kind: [toy-regression]",
                       "? [a, b]\n: 1\nkind: toy-regression", "kind: {name: toy-regression}\ntrain: {1: 2, a: 3}"]
            text = attacks[i % len(attacks)]
        path = folder / f"c{i:03d}.{'yaml' if i % 2 == 0 else 'json'}"
        path.write_text(text)
        out.append(path)
    return out


def test_fuzzed_run_configs(tmp_path):
    files = _config_mutants(tmp_path, np.random.default_rng(SEED))
    outcomes, rss = _run("config", files)
    _report(outcomes, N)
    assert rss < 1200
