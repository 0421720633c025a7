"""Data-producing layers: DummyData, Data (LMDB) and HDF5Data (Input is handled by the net module).

- DummyData fills each top from its `data_filler` (one for all tops, or one per top; default
  constant 0). As in Caffe, constant tops are filled once and other fillers are redrawn every
  forward.
- Data and HDF5Data yield the next batch of their source at every forward, read by
  `dynsal.data.caffe_sources` as Caffe's layers read them (order, wrap-around, DataTransformer).
- ImageData (ImageDataLayer): list lines "<path> <int label>" split at the last space; images
  `root_folder + path` read by OpenCV (BGR, or grey when `is_color: false`), resized by cv2.resize
  (bilinear) when new_height and new_width are both set, then the DataTransformer; in list order,
  wrapping around, reshuffled at every wrap when `shuffle`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np
import torch

from dynsal.caffe.fillers import fill
from dynsal.caffe.io import read_mean_file
from dynsal.caffe.shapes import SHAPE_RULES
from dynsal.engines.torch.registry import CaffeLayer, LayerContext, register
from dynsal.errors import DataError, NetDefinitionError


class ImageDataSource:
    """Batches {data top: float32 (batch, C, H, W), label top: float32 (batch,)} of an ImageData layer."""

    def __init__(self, layer, phase: int, seed: int | None = None):
        param = layer.image_data_param
        self.layer, self.phase, self.batch = layer, phase, int(param.batch_size)
        self.rng = np.random.default_rng(seed)
        try:
            lines = [line for line in Path(param.source).read_text().splitlines() if line.strip()]
        except OSError:
            raise DataError(f"layer {layer.name!r}: cannot read the image list {param.source}") from None
        self.items = []
        for number, line in enumerate(lines, 1):
            path, _, label = line.rpartition(" ")
            if not path or not label.strip().lstrip("-").isdigit():
                raise DataError(f"{param.source}:{number}: expected '<path> <integer label>', got {line!r}")
            self.items.append((param.root_folder + path, int(label)))
        if not self.items:
            raise DataError(f"{param.source}: lists no images")
        self.mean = read_mean_file(layer.transform_param.mean_file) if layer.transform_param.mean_file else None
        if param.shuffle:
            self.rng.shuffle(self.items)
        self.position = int(self.rng.integers(param.rand_skip)) % len(self.items) if param.rand_skip else 0

    def _image(self, path: str) -> np.ndarray:
        import cv2

        param = self.layer.image_data_param
        image = cv2.imread(path, cv2.IMREAD_COLOR if param.is_color else cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise DataError(f"{path}: cannot read the image (layer {self.layer.name!r})")
        if param.new_height > 0 and param.new_width > 0:
            image = cv2.resize(image, (param.new_width, param.new_height))
        image = image if image.ndim == 3 else image[:, :, None]
        return image.transpose(2, 0, 1)

    def next_batch(self) -> Dict[str, np.ndarray]:
        from dynsal.data.caffe_sources import transform

        data, labels = [], []
        for _ in range(self.batch):
            path, label = self.items[self.position]
            data.append(transform(self._image(path), self.layer.transform_param, self.phase, self.rng, self.mean))
            labels.append(float(label))
            self.position += 1
            if self.position == len(self.items):
                self.position = 0
                if self.layer.image_data_param.shuffle:
                    self.rng.shuffle(self.items)
        batch = {self.layer.top[0]: np.stack(data)}
        if len(self.layer.top) > 1:
            batch[self.layer.top[1]] = np.array(labels, np.float32)
        return batch

    def top_shapes(self) -> Dict[str, tuple]:
        """The tops' shapes, from the first image as ImageDataLayer::DataLayerSetUp sizes them."""
        path, _ = self.items[self.position]
        image = self._image(path)
        crop = self.layer.transform_param.crop_size
        chw = (image.shape[0], crop, crop) if crop else image.shape
        shapes = {self.layer.top[0]: (self.batch,) + tuple(chw)}
        if len(self.layer.top) > 1:
            shapes[self.layer.top[1]] = (self.batch,)
        return shapes


def source_shapes(graph) -> Dict[str, tuple]:
    """Top shapes of the net's data layers that `dynsal.caffe.shapes` has no rule for (ImageData)."""
    shapes = {}
    for layer in graph.layers:
        if layer.type == "ImageData":
            shapes.update(ImageDataSource(layer.param, graph.state.phase).top_shapes())
    return shapes


def _make_source(ctx: LayerContext):
    if ctx.param.type == "ImageData":
        return ImageDataSource(ctx.param, ctx.phase)
    from dynsal.data.caffe_sources import make_source

    return make_source(ctx.param, ctx.phase)


class DummyDataLayer(CaffeLayer):
    """Tops drawn from fillers; `anchor` follows the module's device."""

    def __init__(self, ctx: LayerContext):
        super().__init__(ctx)
        fillers = list(ctx.param.dummy_data_param.data_filler)
        count = len(ctx.param.top)
        if len(fillers) not in (0, 1, count):
            raise NetDefinitionError(f"layer {ctx.name!r}: give 0, 1 or {count} data_fillers, got {len(fillers)}")
        self.tops_fillers = fillers * count if len(fillers) == 1 else (fillers or [None] * count)
        self.shapes = SHAPE_RULES["DummyData"](ctx.param, [])[0]
        self.rng = np.random.default_rng()
        self.register_buffer("anchor", torch.zeros(0), persistent=False)
        self.fixed = {}

    def _top(self, index: int):
        filler, shape = self.tops_fillers[index], self.shapes[index]
        if filler is None or filler.type == "constant":
            if index not in self.fixed:
                value = filler.value if filler is not None else 0.0
                self.fixed[index] = torch.full(shape, value, dtype=torch.float32)
            return self.fixed[index].to(self.anchor.device)
        return torch.from_numpy(fill(filler, shape, self.rng)).to(self.anchor.device)

    def forward(self):
        return tuple(self._top(i) for i in range(len(self.shapes)))


class SourceLayer(CaffeLayer):
    """A Data, HDF5Data or ImageData layer: each forward returns the source's next batch, one tensor per top."""

    def __init__(self, ctx: LayerContext):
        super().__init__(ctx)
        self.source = _make_source(ctx)
        self.top_names = list(ctx.param.top)
        self.register_buffer("anchor", torch.zeros(0), persistent=False)

    def forward(self):
        batch = self.source.next_batch()
        return tuple(torch.from_numpy(batch[top]).to(self.anchor.device) for top in self.top_names)


@register("Data", "HDF5Data", "ImageData")
def data_source(ctx: LayerContext) -> CaffeLayer:
    return SourceLayer(ctx)


@register("DummyData")
def dummy_data(ctx: LayerContext) -> CaffeLayer:
    return DummyDataLayer(ctx)
