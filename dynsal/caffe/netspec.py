"""A NetSpec-like builder for Caffe net definitions (after Caffe's python/caffe/net_spec.py).

    n = NetSpec("SSNet")
    n.data1 = L.Input(shape=dict(dim=[1, 3, 240, 320]))
    n.conv1 = L.Convolution(n.data1, num_output=96, kernel_size=7, pad=3)
    n.relu1 = L.ReLU(n.conv1, in_place=True)     # layer "relu1", top "conv1"
    net = n.to_proto()                           # pb.NetParameter, layers in assignment order

Keyword arguments go to the layer's type-specific parameter message (`convolution_param` for
Convolution and Deconvolution, `pooling_param` for Pooling, ...), unless they name a
LayerParameter field (`param`, `include`, `loss_weight`, `transform_param`, `*_param`, ...).
Dicts become sub-messages, lists repeated fields, strings on enum fields are enum value names.
Unknown fields raise NetDefinitionError (no silent acceptance of typos).
"""
from __future__ import annotations

from typing import Dict, List

from dynsal.caffe.schema import pb
from dynsal.errors import NetDefinitionError

_LAYER_FIELDS = pb.LayerParameter.DESCRIPTOR.fields_by_name


def _param_field_for_type(type_name: str) -> str | None:
    """The LayerParameter field holding a type's parameters (Deconvolution uses convolution_param)."""
    if type_name == "Deconvolution":
        return "convolution_param"
    for field in pb.LayerParameter.DESCRIPTOR.fields:
        if field.name.endswith("_param") and field.message_type.name == f"{type_name}Parameter":
            return field.name
    return None


def assign_fields(message, values: Dict, where: str) -> None:
    """Set fields of a protobuf message from plain Python values (dicts, lists, scalars, enum names)."""
    for key, value in values.items():
        field = message.DESCRIPTOR.fields_by_name.get(key)
        if field is None:
            raise NetDefinitionError(f"{where}: {message.DESCRIPTOR.name} has no field {key!r}")
        repeated = field.label == field.LABEL_REPEATED if hasattr(field, "label") else field.is_repeated
        items = value if isinstance(value, (list, tuple)) else [value]
        if not repeated and isinstance(value, (list, tuple)):
            raise NetDefinitionError(f"{where}: field {key!r} takes one value, got {value!r}")
        target = getattr(message, key)
        for item in items:
            if field.message_type is not None:
                sub = target.add() if repeated else target
                sub.SetInParent()
                assign_fields(sub, item, f"{where}.{key}")
                continue
            if field.enum_type is not None and isinstance(item, str):
                if item not in field.enum_type.values_by_name:
                    raise NetDefinitionError(f"{where}: {key} has no value {item!r}")
                item = field.enum_type.values_by_name[item].number
            if repeated:
                target.append(item)
            else:
                setattr(message, key, item)


class Top:
    """A blob produced by a layer; its name is fixed when it is assigned to a NetSpec attribute."""

    def __init__(self, layer: LayerSpec, index: int):
        self.layer, self.index = layer, index
        self.name: str | None = None


class LayerSpec:
    """A layer under construction: type, bottoms (Tops or blob names) and parameters."""

    def __init__(self, type_name: str, bottoms, ntop: int, in_place: bool, kwargs: Dict):
        self.type_name, self.bottoms, self.in_place = type_name, list(bottoms), in_place
        self.name = kwargs.pop("name", None)
        self.kwargs = kwargs
        self.tops = [Top(self, i) for i in range(ntop)]

    def to_proto(self):
        layer = pb.LayerParameter(name=self.name, type=self.type_name)
        layer.bottom.extend(b.name if isinstance(b, Top) else b for b in self.bottoms)
        layer.top.extend(t.name for t in self.tops)
        own, typed = {}, {}
        for key, value in self.kwargs.items():
            (own if key in _LAYER_FIELDS else typed)[key] = value
        assign_fields(layer, own, f"layer {self.name!r}")
        if typed:
            field = _param_field_for_type(self.type_name)
            if field is None:
                raise NetDefinitionError(f"layer {self.name!r}: type {self.type_name} takes no parameters {typed}")
            assign_fields(getattr(layer, field), typed, f"layer {self.name!r}")
        return layer


class FixedLayer(LayerSpec):
    """A layer given as a finished LayerParameter (e.g. a phase-specific data layer)."""

    def __init__(self, layer_proto):
        super().__init__(layer_proto.type, [], 0, False, {"name": layer_proto.name})
        self.proto = layer_proto

    def to_proto(self):
        return self.proto


class _Layers:
    """`L.<CaffeType>(*bottoms, ntop=1, in_place=False, name=None, **params)` -> Top or tuple of Tops."""

    def __getattr__(self, type_name: str):
        if type_name.startswith("_"):
            raise AttributeError(type_name)

        def make(*bottoms, ntop: int = 1, in_place: bool = False, **kwargs):
            spec = LayerSpec(type_name, bottoms, ntop, in_place, kwargs)
            if ntop == 0:
                return spec
            return spec.tops[0] if ntop == 1 else tuple(spec.tops)

        return make


L = _Layers()


class NetSpec:
    """Collects layers in the order their tops are assigned; `to_proto()` gives the NetParameter."""

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_layers", [])
        object.__setattr__(self, "_blobs", {})

    def __setattr__(self, attr: str, value) -> None:
        if isinstance(value, LayerSpec):  # a layer without tops (e.g. Silence)
            value.name = value.name or attr
            self._layers.append(value)
            return
        if not isinstance(value, Top):
            raise NetDefinitionError(f"net {self._name}: {attr} must be a layer output, got {type(value).__name__}")
        layer = value.layer
        if layer.in_place:
            bottom = layer.bottoms[value.index]
            value.name = bottom.name if isinstance(bottom, Top) else bottom
        else:
            value.name = attr
        if layer not in self._layers:
            layer.name = layer.name or attr
            self._layers.append(layer)
        self._blobs[attr] = value

    def __getattr__(self, attr: str) -> Top:
        try:
            return self._blobs[attr]
        except KeyError:
            raise AttributeError(f"net {self._name} has no blob {attr!r}") from None

    def add_layer(self, layer_proto) -> List[Top]:
        """Append a ready LayerParameter (e.g. a phase-specific data layer); returns Tops for its tops."""
        spec = FixedLayer(layer_proto)
        self._layers.append(spec)
        tops = []
        for name in layer_proto.top:
            top = self._blobs.get(name) or Top(spec, len(tops))
            top.name = name
            self._blobs[name] = top
            tops.append(top)
        return tops

    def to_proto(self):
        net = pb.NetParameter(name=self._name)
        for layer in self._layers:
            net.layer.add().CopyFrom(layer.to_proto())
        return net
