"""Fetch, verify, convert and cache FaceLink's encoder models.

The BlazeFace and Face Mesh (and Iris) ``.tflite`` graphs, and the selfie-segmentation graph
the generator's background plate uses, ship inside the ``mediapipe==0.10.18`` wheel.  FaceLink never commits weights; on first use it obtains that
wheel (an explicit path, ``FACELINK_MEDIAPIPE_WHEEL``, ``pip download``, or PyPI's JSON API
when pip is missing), extracts only the pinned members, checks their SHA-256, converts them to
ONNX with :mod:`facelink.models._convert`, and caches both under ``$FACELINK_HOME/models``::

    face_detection_short_range.tflite                 verified source graphs (pre-seedable)
    face_landmark.tflite
    iris_landmark.tflite
    selfie_segmentation.tflite
    face_detector-bbff11cebd1e-c2.onnx                converted graphs: model name, source
    face_landmark-1055cb9d4a9c-c2.onnx                hash prefix and converter version
    iris_landmark-d1744d2a09c2-c2.onnx
    selfie_segmentation-9ee168ec7c8f-c2.onnx
    .lock                                             fcntl lock held while fetching

Every file is written to a temporary name and renamed into place, under an exclusive lock, so
concurrent processes never see or produce a partial file.  Offline machines can be pre-seeded
by copying the cache (or only the ``.tflite`` files) from a machine that has fetched them.

Environment: ``FACELINK_HOME`` (cache root), ``FACELINK_MEDIAPIPE_WHEEL`` (a local wheel),
``FACELINK_FETCH_TIMEOUT`` (seconds for the whole download, default 300).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import types
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .._files import atomic_write as _atomic_write
from .._files import fetch_timeout as _timeout
from .._files import locked as _locked
from .._files import one_line as _one_line
from .._home import facelink_home
from ..errors import ModelFetchError
from ._convert import CONVERTER_VERSION, convert
from ._tflite import read_model

__all__ = [
    "MEDIAPIPE_VERSION",
    "MODEL_SPECS",
    "ModelSpec",
    "facelink_home",
    "fetch_models",
]

#: the mediapipe release whose wheel carries the pinned graphs
MEDIAPIPE_VERSION = "0.10.18"
_PYPI_JSON = f"https://pypi.org/pypi/mediapipe/{MEDIAPIPE_VERSION}/json"
_MAX_MEMBER_BYTES = 64 << 20
#: extra time a fetch waits for another process's lock beyond one fetch timeout
_LOCK_GRACE_S = 120.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ModelSpec:
    """One encoder model: where it lives in the wheel, its pin, and its converted ONNX interface.

    The ONNX graph's input ``input_name`` is float32 NHWC ``input_shape`` with values in
    ``input_range``; its outputs are ``output_names`` with ``output_shapes`` (TFLite's shapes,
    the graph's raw values: logits are not passed through a sigmoid; the selfie mask is a
    probability because the graph itself ends in LOGISTIC).
    """

    name: str
    member: str
    sha256: str
    input_name: str
    input_shape: tuple[int, ...]
    input_range: tuple[float, float]
    output_names: tuple[str, ...]
    output_shapes: tuple[tuple[int, ...], ...]
    tflite_outputs: tuple[str, ...]

    @property
    def tflite_filename(self) -> str:
        """File name of the verified ``.tflite`` in the cache."""
        return self.member.rsplit("/", 1)[-1]

    @property
    def onnx_filename(self) -> str:
        """File name of the converted graph; changes with the source pin and the converter."""
        return f"{self.name}-{self.sha256[:12]}-c{CONVERTER_VERSION}.onnx"


MODEL_SPECS: Mapping[str, ModelSpec] = types.MappingProxyType(
    {
        s.name: s
        for s in (
            ModelSpec(
                name="face_detector",
                member="mediapipe/modules/face_detection/face_detection_short_range.tflite",
                sha256="bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
                input_name="input",
                input_shape=(1, 128, 128, 3),
                input_range=(-1.0, 1.0),
                output_names=("regressors", "classificators"),
                output_shapes=((1, 896, 16), (1, 896, 1)),
                tflite_outputs=("regressors", "classificators"),
            ),
            ModelSpec(
                name="face_landmark",
                member="mediapipe/modules/face_landmark/face_landmark.tflite",
                sha256="1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
                input_name="input",
                input_shape=(1, 192, 192, 3),
                input_range=(0.0, 1.0),
                output_names=("landmarks", "face_flag"),
                output_shapes=((1, 1, 1, 1404), (1, 1, 1, 1)),
                tflite_outputs=("conv2d_21", "conv2d_31"),
            ),
            ModelSpec(
                name="iris_landmark",
                member="mediapipe/modules/iris_landmark/iris_landmark.tflite",
                sha256="d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
                input_name="input",
                input_shape=(1, 64, 64, 3),
                input_range=(0.0, 1.0),
                output_names=("eye_contours", "iris"),
                output_shapes=((1, 213), (1, 15)),
                tflite_outputs=("output_eyes_contours_and_brows", "output_iris"),
            ),
            # the general (square, 256x256) selfie model, not the landscape 144x256 one: the
            # plate segments a square crop around head and shoulders that it chooses itself, so
            # the square model sees it undistorted at the higher vertical resolution (hair)
            ModelSpec(
                name="selfie_segmentation",
                member="mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
                sha256="9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
                input_name="input",
                input_shape=(1, 256, 256, 3),
                input_range=(0.0, 1.0),
                output_names=("mask",),
                output_shapes=((1, 256, 256, 1),),
                tflite_outputs=("activation_10",),
            ),
        )
    }
)



def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- obtaining the wheel -----------------------------------------------------------------------


def _pip_download(dest: Path, progress: Progress | None) -> Path:
    """``pip download`` the pinned wheel into ``dest`` (honours the user's pip config)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--platform",
        "manylinux_2_17_x86_64",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        f"mediapipe=={MEDIAPIPE_VERSION}",
        "-d",
        str(dest),
    ]
    _say(progress, f"downloading mediapipe=={MEDIAPIPE_VERSION} with pip (about 36 MB)")
    timeout = _timeout()
    try:
        done = subprocess.run(
            cmd, check=False, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise ModelFetchError(f"pip download timed out after {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout or "").splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")]
        raise ModelFetchError(f"pip download failed: {_one_line((errors or lines or ['no output'])[-1])}")
    wheels = sorted(dest.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
    if not wheels:
        raise ModelFetchError("pip download succeeded but left no mediapipe wheel")
    return wheels[0]


def _urllib_download(dest: Path, progress: Progress | None) -> Path:
    """Download the wheel named by PyPI's JSON API and check the sha256 PyPI lists."""
    timeout = _timeout()
    deadline = time.monotonic() + timeout
    sock_timeout = min(30.0, timeout)
    _say(progress, f"pip unavailable; asking {_PYPI_JSON}")
    with urllib.request.urlopen(_PYPI_JSON, timeout=sock_timeout) as resp:
        meta = json.loads(resp.read(4 << 20))
    entries = meta.get("urls") if isinstance(meta, dict) else None
    wheels = [
        (str(u["filename"]), str(u["url"]), str((u.get("digests") or {}).get("sha256", "")))
        for u in (entries if isinstance(entries, list) else [])
        if isinstance(u, dict) and str(u.get("filename", "")).endswith(".whl") and u.get("url")
    ]
    if not wheels:
        raise ModelFetchError(f"PyPI lists no wheels for mediapipe=={MEDIAPIPE_VERSION}")
    # the graphs are identical in every wheel; prefer the one pip would pick on a Linux laptop
    wheels.sort(key=lambda w: ("manylinux" not in w[0] or "x86_64" not in w[0], "cp311" not in w[0]))
    filename, url, expected = wheels[0]
    name = os.path.basename(filename)
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise ModelFetchError(f"PyPI lists no sha256 for {name}")
    _say(progress, f"downloading {name}")
    target = dest / name
    h = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=sock_timeout) as resp, target.open("wb") as f:
        while chunk := resp.read(1 << 20):
            if time.monotonic() > deadline:
                raise ModelFetchError(f"download of {name} timed out after {timeout:.0f} s")
            h.update(chunk)
            f.write(chunk)
    if h.hexdigest() != expected:
        raise ModelFetchError(f"downloaded {name} has sha256 {h.hexdigest()}, PyPI lists {expected}")
    return target


def _pip_available() -> bool:
    return importlib.util.find_spec("pip") is not None


def _download_wheel(dest: Path, progress: Progress | None) -> Path:
    """Fetch the pinned mediapipe wheel into ``dest``: pip if importable, else PyPI over urllib."""
    if _pip_available():
        return _pip_download(dest, progress)
    return _urllib_download(dest, progress)


def _offline_message(reason: str, cache: Path) -> str:
    return (
        f"cannot fetch mediapipe=={MEDIAPIPE_VERSION} ({_one_line(reason)}); on a machine with network "
        f"run `facelink models fetch` and copy ~/.cache/facelink to {cache.parent} (or set FACELINK_HOME), "
        "or pass --wheel PATH / set FACELINK_MEDIAPIPE_WHEEL to a downloaded mediapipe wheel"
    )


def _read_members(wheel: Path, specs: tuple[ModelSpec, ...]) -> dict[str, bytes]:
    """Pinned members of ``wheel`` by model name, each checked against its SHA-256."""
    out: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(wheel) as z:
            for spec in specs:
                try:
                    info = z.getinfo(spec.member)
                except KeyError:
                    raise ModelFetchError(
                        f"{wheel.name} has no {spec.member}; is it a mediapipe=={MEDIAPIPE_VERSION} wheel?"
                    ) from None
                if info.file_size > _MAX_MEMBER_BYTES:
                    raise ModelFetchError(
                        f"{spec.member} in {wheel.name} is implausibly large ({info.file_size} bytes)"
                    )
                data = z.read(info)
                actual = hashlib.sha256(data).hexdigest()
                if actual != spec.sha256:
                    raise ModelFetchError(f"{spec.member} in {wheel.name} has sha256 {actual}, expected {spec.sha256}")
                out[spec.name] = data
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, NotImplementedError) as exc:
        raise ModelFetchError(f"{wheel} is not a readable wheel: {_one_line(str(exc))}") from None
    except OSError as exc:
        raise ModelFetchError(f"cannot read {wheel}: {_one_line(str(exc))}") from None
    return out


def _fetch_tflite(specs: tuple[ModelSpec, ...], cache: Path, wheel: str | None, progress: Progress | None) -> None:
    """Extract ``specs`` from the wheel (explicit, env, or downloaded) into ``cache``, verified."""
    explicit = wheel or os.environ.get("FACELINK_MEDIAPIPE_WHEEL") or None
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ModelFetchError(f"mediapipe wheel {path} does not exist (from --wheel or FACELINK_MEDIAPIPE_WHEEL)")
        _say(progress, f"using {path}")
        members = _read_members(path, specs)
    else:
        with tempfile.TemporaryDirectory(prefix="facelink-fetch-") as tmp:
            try:
                path = _download_wheel(Path(tmp), progress)
            # URLError and socket timeouts are OSErrors; a bad JSON reply is a ValueError
            except (OSError, ValueError, http.client.HTTPException, ModelFetchError) as exc:
                raise ModelFetchError(_offline_message(str(exc) or type(exc).__name__, cache)) from None
            members = _read_members(path, specs)
    for spec in specs:
        _atomic_write(cache / spec.tflite_filename, members[spec.name])
        _say(progress, f"verified {spec.tflite_filename} (sha256 {spec.sha256[:12]}…)")


def _cached_tflite_ok(spec: ModelSpec, cache: Path) -> bool:
    """True if the cached ``.tflite`` exists and matches its pin; a mismatch is an error."""
    path = cache / spec.tflite_filename
    if not path.is_file():
        return False
    actual = _sha256_file(path)
    if actual != spec.sha256:
        raise ModelFetchError(
            f"{path} has sha256 {actual}, expected {spec.sha256}; delete it or run `facelink models fetch --force`"
        )
    return True


def _convert_into(spec: ModelSpec, cache: Path, progress: Progress | None) -> Path:
    target = cache / spec.onnx_filename
    start = time.perf_counter()
    model = read_model((cache / spec.tflite_filename).read_bytes())
    graph0 = model.subgraphs[0]
    names = tuple(graph0.tensors[i].name for i in graph0.outputs)
    if names != spec.tflite_outputs:
        raise ModelFetchError(f"{spec.tflite_filename} has outputs {list(names)}, expected {list(spec.tflite_outputs)}")
    onnx_model = convert(
        model,
        output_names=spec.output_names,
        input_name=spec.input_name,
        graph_name=spec.name,
        metadata={
            "facelink.source": f"mediapipe=={MEDIAPIPE_VERSION}:{spec.member}",
            "facelink.source_sha256": spec.sha256,
        },
    )
    graph = onnx_model.graph
    got = tuple(tuple(d.dim_value for d in o.type.tensor_type.shape.dim) for o in graph.output)
    if got != spec.output_shapes:
        raise ModelFetchError(f"converted {spec.name} has output shapes {got}, expected {spec.output_shapes}")
    _atomic_write(target, onnx_model.SerializeToString())
    for stale in cache.glob(f"{spec.name}-*.onnx"):
        if stale.name != target.name:
            with contextlib.suppress(OSError):
                stale.unlink()
    _say(progress, f"converted {spec.name} to {target.name} in {time.perf_counter() - start:.2f} s")
    return target


def _ensure(specs: tuple[ModelSpec, ...], wheel: str | None, force: bool, progress: Progress | None) -> dict[str, Path]:
    cache = facelink_home() / "models"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = _one_line(exc.strerror or str(exc))
        raise ModelFetchError(
            f"cannot create model cache {cache}: {reason}; set FACELINK_HOME to a writable directory"
        ) from None
    try:
        with _locked(cache / ".lock", _timeout() + _LOCK_GRACE_S):
            if force or not all(_cached_tflite_ok(s, cache) for s in specs):
                # one wheel carries every graph: refresh all pins while we have it
                _fetch_tflite(tuple(MODEL_SPECS.values()), cache, wheel, progress)
            out = {}
            for spec in specs:
                target = cache / spec.onnx_filename
                out[spec.name] = target if target.is_file() and not force else _convert_into(spec, cache, progress)
            return out
    except OSError as exc:
        raise ModelFetchError(
            f"cannot use model cache {cache}: {_one_line(str(exc))}; set FACELINK_HOME to a writable directory"
        ) from None


def fetch_models(wheel: str | None = None, force: bool = False, progress: Progress | None = None) -> dict[str, Path]:
    """Fetch, verify and convert every encoder model; return ``{name: onnx_path}``.

    ``wheel`` names a local mediapipe wheel to use instead of downloading (as does
    ``FACELINK_MEDIAPIPE_WHEEL``); it is read only when a ``.tflite`` is missing from the cache.
    ``force`` re-extracts and re-converts even when cached.  ``progress`` receives one-line
    status messages.  Raises :class:`ModelFetchError` (one line, saying what to do).
    """
    return _ensure(tuple(MODEL_SPECS.values()), wheel, force, progress)
