"""Model files opened lazily: a read-only ``{key: tensor}`` view of a safetensors file (memory-mapped) or of a
weights-only unpickled .ckpt/.pt, loading each tensor only when asked for, in the requested dtype."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

REOPEN_BYTES = 256 << 20


class CheckpointError(ValueError):
    """A model file cannot be loaded; the message says what was expected and what was found."""



# --------------------------------------------------------------------------------------------- sources


class TensorSource(Mapping):
    """A read-only ``{key: tensor}`` view of a checkpoint that loads each tensor only when asked for, in
    ``dtype`` (floating tensors only). diffusers' converters take it for a state dict."""

    def __init__(self, path: Path, dtype: Any = None) -> None:
        self.path = path
        self.dtype = dtype
        self.metadata: dict[str, str] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}

    def __iter__(self) -> Iterator[str]:
        return iter(self.shapes)

    def __len__(self) -> int:
        return len(self.shapes)

    def __contains__(self, key: object) -> bool:
        return key in self.shapes

    def _cast(self, tensor: Any) -> Any:
        if self.dtype is not None and tensor.is_floating_point() and tensor.dtype != self.dtype:
            return tensor.to(self.dtype)
        return tensor

    def close(self) -> None:
        pass


class SafetensorsSource(TensorSource):
    def __init__(self, path: Path, dtype: Any = None) -> None:
        from safetensors import SafetensorError, safe_open

        super().__init__(path, dtype)
        self._safe_open = safe_open
        try:
            handle = safe_open(str(path), framework="pt")
        except SafetensorError as exc:
            raise CheckpointError(
                f"{path.name} is not a readable safetensors file (truncated or corrupted?): {exc}"
            ) from None
        except OSError as exc:
            raise CheckpointError(f"cannot read {path}: {exc}") from None
        self.metadata = dict(handle.metadata() or {})
        self.shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}
        self._handle: Any = handle
        self._converted = 0

    def __getitem__(self, key: str) -> Any:
        if key not in self.shapes:
            raise KeyError(key)
        if self._handle is None:
            self._handle = self._safe_open(str(self.path), framework="pt")
        try:
            mapped = self._handle.get_tensor(key)
        except Exception as exc:  # safetensors raises its own error types for a damaged body
            raise CheckpointError(f"{self.path.name}: cannot read tensor {key}: {exc}") from None
        tensor = self._cast(mapped)
        if tensor is mapped:
            # Kept as it is: backed by the file's (private, copy-on-write) memory map, as diffusers and
            # ComfyUI keep safetensors weights. Nothing is copied; pages are read when first used and
            # count as page cache, not as a second copy. The same file maps at the same alignment every
            # time, so results do not depend on where a load happened to put the weights.
            return mapped
        self._converted += mapped.numel() * mapped.element_size()
        del mapped
        if self._converted > REOPEN_BYTES:
            # the converted copy is what stays; dropping the handle unmaps the pages read for it
            self._handle = None
            self._converted = 0
        return tensor

    def close(self) -> None:
        self._handle = None


class PickleSource(TensorSource):
    """A .ckpt/.pt file, unpickled with ``weights_only=True`` (no code runs). Tensors are cast in place in
    the loaded dict so that a dtype change never keeps both versions."""

    def __init__(self, path: Path, dtype: Any = None) -> None:
        from nodes.weight_files import load_pickled_weights

        super().__init__(path, dtype)
        try:
            # bounded: a file that contains itself, nests without end or inflates its tensors is refused
            self._tensors, _ = load_pickled_weights(path)
        except ValueError as exc:  # PickledWeightsError, LimitExceeded
            raise CheckpointError(str(exc)) from None
        self.shapes = {k: tuple(v.shape) for k, v in self._tensors.items()}

    def __getitem__(self, key: str) -> Any:
        tensor = self._tensors[key]
        cast = self._cast(tensor)
        if cast is not tensor:
            self._tensors[key] = cast
        return cast

    def close(self) -> None:
        self._tensors = {}


class SubsetSource(Mapping):
    """Only the keys of ``source`` that start with one of ``prefixes`` (so converters that take every key
    of a file do not read the parts they will not use)."""

    def __init__(self, source: TensorSource, prefixes: tuple[str, ...]) -> None:
        self.source = source
        self._keys = [k for k in source.shapes if k.startswith(prefixes)]
        self._set = set(self._keys)

    def __getitem__(self, key: str) -> Any:
        if key not in self._set:
            raise KeyError(key)
        return self.source[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._set


def open_source(path: Path, dtype: Any = None) -> TensorSource:
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return SafetensorsSource(path, dtype)
    if suffix in (".ckpt", ".pt", ".pth", ".bin"):
        return PickleSource(path, dtype)
    raise CheckpointError(f"{path.name}: unknown model file type {suffix!r} (expected .safetensors, .ckpt or .pt)")

