"""Shared pytest configuration: runtime versions in the header, models fetched once per session."""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("facelink") is None:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "sdk"))

from facelink.errors import ModelFetchError  # noqa: E402
from facelink.models import MODEL_SPECS, facelink_home, fetch_models  # noqa: E402

#: the cache the session fetches into, fixed before any test monkeypatches FACELINK_HOME
_HOME = facelink_home()


def _isolated_home() -> Path:
    """A private FACELINK_HOME for the test session: keys, trust and caches written by tests
    stay out of the user's, while the (large, verified) model and asset caches are shared."""
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="facelink-test-home-"))
    for sub in ("models", "assets", "generator"):
        (_HOME / sub).mkdir(parents=True, exist_ok=True)
        (home / sub).symlink_to(_HOME / sub, target_is_directory=True)
    os.environ["FACELINK_HOME"] = str(home)
    return home


_TEST_HOME = _isolated_home()
#: real talking-head data (never copied into the repo); FACELINK_DATA overrides
DATA_DIR = Path(os.environ.get("FACELINK_DATA", ROOT.parent / "shared" / "data"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long fuzz tests (``@pytest.mark.fuzz``) run in CI (FACELINK_FUZZ_EXAMPLES set) or with ``-m fuzz``."""
    if os.environ.get("FACELINK_FUZZ_EXAMPLES") or "fuzz" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="long fuzz test: set FACELINK_FUZZ_EXAMPLES=N (CI: 5000) or select with -m fuzz")
    for item in items:
        if "fuzz" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    try:
        import onnxruntime as ort

        lines.append(f"onnxruntime {ort.__version__}, providers: {', '.join(ort.get_available_providers())}")
    except ImportError as exc:
        lines.append(f"onnxruntime: not importable ({exc})")
    try:
        import tensorrt

        lines.append(f"tensorrt {tensorrt.__version__}")
    except ImportError:
        lines.append("tensorrt: not importable")
    except Exception as exc:  # noqa: BLE001 - a broken TensorRT install must not break the header
        lines.append(f"tensorrt: import failed ({type(exc).__name__}: {exc})")
    lines.append(f"facelink model cache: {_HOME / 'models'}; data: {DATA_DIR if DATA_DIR.is_dir() else 'absent'}")
    return lines


@dataclass(frozen=True)
class ModelFiles:
    """The session's fetched models: converted ONNX and verified TFLite paths by model name."""

    onnx: dict[str, Path]
    tflite: dict[str, Path]


@functools.cache
def _fetch_once() -> tuple[ModelFiles | None, str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACELINK_HOME", str(_HOME))
        try:
            onnx = fetch_models()
        except ModelFetchError as exc:
            return None, f"encoder models unavailable (no network and no cache): {exc}"
    tflite = {name: _HOME / "models" / spec.tflite_filename for name, spec in MODEL_SPECS.items()}
    return ModelFiles(onnx=onnx, tflite=tflite), ""


def models_available() -> bool:
    """True if the encoder models could be fetched (or were cached); fetches at most once."""
    return _fetch_once()[0] is not None


@pytest.fixture(scope="session")
def models() -> ModelFiles:
    """Fetched models; skips the test, saying why, when neither network nor cache has them."""
    files, reason = _fetch_once()
    if files is None:
        pytest.skip(reason)
    return files


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real-data directory; skips when it is absent."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"real data directory {DATA_DIR} is absent (set FACELINK_DATA)")
    return DATA_DIR


# --- shared fixtures for tests that need the face models and a real face ------------------


@pytest.fixture(scope="session")
def face_models(models: ModelFiles):
    """(FaceDetector, LandmarkModel) on ONNX Runtime; skips like ``models`` when unavailable."""
    from facelink.face import create_models

    return create_models("onnxruntime")


@pytest.fixture(scope="session")
def portrait():
    """NASA's public-domain astronaut portrait (fetched once from the pinned scikit-image wheel)."""
    from facelink.assets import asset_path
    from facelink.io import load_image

    try:
        return load_image(str(asset_path("astronaut")))
    except ModelFetchError as e:
        pytest.skip(f"demo portrait unavailable (no network and no cache): {e}")
