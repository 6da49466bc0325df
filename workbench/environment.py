"""What the Home page and `medvision demo` report about the machine: device and database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import make_url


@dataclass
class DeviceInfo:
    device: str
    detail: str


def describe_device(preferred: str | None = None) -> DeviceInfo:
    """The compute device generation will use: the setting, else CUDA when present, else CPU."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return DeviceInfo("cpu", "PyTorch is not installed")
    if preferred:
        return DeviceInfo(preferred, f"set by MEDVISION_DEVICE (torch {torch.__version__})")
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return DeviceInfo("cuda", f"{name}, bf16 (torch {torch.__version__})")
    return DeviceInfo("cpu", f"CPU, float32 (torch {torch.__version__})")


def describe_database(url: str) -> str:
    """The database URL with any password hidden."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite (WAL) at {parsed.database}"
    return f"PostgreSQL at {parsed.render_as_string(hide_password=True)}"
