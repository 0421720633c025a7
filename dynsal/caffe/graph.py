"""How Caffe turns a NetParameter into a net (net.cpp, insert_splits.cpp), without running it.

- `filter_net`: keep the layers whose include/exclude NetStateRules match the NetState (Net::FilterNet).
- `insert_splits`: add the implicit Split layers for blobs consumed more than once (InsertSplits).
- `build_graph`: the constructed net's layers in order, in-place flags, inputs and outputs; the
  one path the shape inference, `dynsal info` and the engines share.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from dynsal.caffe.schema import pb
from dynsal.errors import NetDefinitionError

LOSS_SUFFIX = "Loss"


def make_state(phase: int | str = "TEST", level: int = 0, stages=(), base=None):
    """A NetState: `base` (e.g. the net's own `state`) with phase/level/stages set."""
    state = pb.NetState()
    if base is not None:
        state.CopyFrom(base)
    state.phase = pb.TRAIN if str(phase).upper() in ("TRAIN", "0") else pb.TEST
    state.level = level
    state.stage.extend(s for s in stages if s not in state.stage)
    return state


def rule_met(state, rule) -> bool:
    """Caffe's StateMeetsRule: phase, level range, required stages, forbidden stages."""
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    if any(stage not in state.stage for stage in rule.stage):
        return False
    return not any(stage in state.stage for stage in rule.not_stage)


def layer_included(layer, state) -> bool:
    """Net::FilterNet for one layer: include rules (any must hold) or exclude rules (none may hold)."""
    if len(layer.include) and len(layer.exclude):
        raise NetDefinitionError(f"layer {layer.name!r}: specify either include or exclude rules, not both")
    if len(layer.include):
        return any(rule_met(state, rule) for rule in layer.include)
    return not any(rule_met(state, rule) for rule in layer.exclude)


def filter_net(net, state):
    """A copy of `net` with only the layers included under `state`; `state` is stored in it."""
    filtered = pb.NetParameter()
    filtered.CopyFrom(net)
    filtered.ClearField("layer")
    filtered.state.CopyFrom(state)
    filtered.layer.extend(layer for layer in net.layer if layer_included(layer, state))
    return filtered


def is_loss_layer(layer) -> bool:
    return layer.type.endswith(LOSS_SUFFIX)


def loss_weight(layer, top_index: int) -> float:
    """The loss weight of a top: explicit `loss_weight`, else 1 for top 0 of a *Loss layer."""
    if len(layer.loss_weight):
        return layer.loss_weight[top_index] if top_index < len(layer.loss_weight) else 0.0
    return 1.0 if (is_loss_layer(layer) and top_index == 0) else 0.0


def split_layer_name(blob: str, layer: str, top_index: int) -> str:
    return f"{blob}_{layer}_{top_index}_split"


def insert_splits(net):
    """A copy of `net` with Caffe's implicit Split layers (InsertSplits in insert_splits.cpp).

    A top consumed by more than one bottom (an explicit non-zero loss_weight counts as one consumer) gets a
    `Split` layer named `<blob>_<layer>_<topidx>_split` right after its producer, with tops
    `<name>_<k>`; consumers are rewired in order. The loss weight moves to split output 0 and the
    producer's loss_weight list is cleared.
    """
    producer = {}  # blob name -> (layer index, top index) of its latest producer
    consumers = {}  # (layer index, top index) -> number of consumers
    bottom_source = {}  # (layer index, bottom index) -> (layer index, top index)
    explicit_loss = {}  # (layer index, top index) -> explicit non-zero loss weight on it
    for li, layer in enumerate(net.layer):
        for bi, blob in enumerate(layer.bottom):
            if blob not in producer:
                raise NetDefinitionError(f"layer {layer.name!r}: unknown bottom blob {blob!r}")
            source = producer[blob]
            bottom_source[(li, bi)] = source
            consumers[source] = consumers.get(source, 0) + 1
        for ti, blob in enumerate(layer.top):
            producer[blob] = (li, ti)
        for ti, weight in enumerate(list(layer.loss_weight)[:len(layer.top)]):
            if weight:  # only explicit loss weights count as a consumer, as in Caffe
                source = producer[layer.top[ti]]
                explicit_loss[source] = weight
                consumers[source] = consumers.get(source, 0) + 1
    out = pb.NetParameter()
    out.CopyFrom(net)
    out.ClearField("layer")
    next_split_top = {}  # (layer index, top index) -> next split output index to hand out
    for li, layer in enumerate(net.layer):
        new_layer = out.layer.add()
        new_layer.CopyFrom(layer)
        for bi in range(len(layer.bottom)):
            source = bottom_source[(li, bi)]
            if consumers.get(source, 0) > 1:
                src_layer = net.layer[source[0]]
                k = next_split_top.get(source, 0)
                next_split_top[source] = k + 1
                name = split_layer_name(layer.bottom[bi], src_layer.name, source[1])
                new_layer.bottom[bi] = f"{name}_{k}"
        for ti, blob in enumerate(layer.top):
            count = consumers.get((li, ti), 0)
            if count <= 1:
                continue
            split = out.layer.add(name=split_layer_name(blob, layer.name, ti), type="Split", bottom=[blob])
            split.top.extend(f"{split.name}_{k}" for k in range(count))
            weight = explicit_loss.get((li, ti), 0.0)
            if weight:
                split.loss_weight.extend([weight] + [0.0] * (count - 1))
                new_layer.ClearField("loss_weight")
    return out


@dataclass
class GraphLayer:
    """One layer of a constructed net: its definition and how its blobs are wired."""

    param: object  # pb.LayerParameter (after filtering and split insertion)
    in_place: list = field(default_factory=list)  # per top: True when it reuses its bottom's storage

    @property
    def name(self) -> str:
        return self.param.name

    @property
    def type(self) -> str:
        return self.param.type


@dataclass
class NetGraph:
    """A net as Caffe constructs it for one NetState."""

    name: str
    state: object
    layers: list
    inputs: list  # tops of Input layers, in order
    outputs: list  # tops never consumed, alphabetically (Caffe keeps them in a std::set)
    blobs: list  # every blob name in creation order
    force_backward: bool = False

    def layer(self, name: str) -> GraphLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


def build_graph(net, phase: int | str = "TEST", level: int = 0, stages=(), splits: bool = True) -> NetGraph:
    """Filter `net` for a phase, insert splits, check the wiring and list inputs and outputs.

    Args:
        net: an upgraded `pb.NetParameter`.
        phase, level, stages: the NetState, combined with the net's own `state` like Caffe's Net().
        splits: insert implicit Split layers (Caffe always does; False keeps the written layers).

    Raises:
        NetDefinitionError: unknown bottoms, a top produced twice, include+exclude on one layer.
    """
    state = make_state(phase, level, stages, base=net.state if net.HasField("state") else None)
    filtered = filter_net(net, state)
    for layer in filtered.layer:
        if not layer.HasField("phase"):
            layer.phase = state.phase
    constructed = insert_splits(filtered) if splits else filtered
    available, blobs, inputs, layers = set(), [], [], []
    names = set()
    for layer in constructed.layer:
        if layer.name in names and layer.name:
            raise NetDefinitionError(f"layer name {layer.name!r} is used twice; layer names must be unique")
        names.add(layer.name)
        for blob in layer.bottom:
            if blob not in blobs:
                raise NetDefinitionError(f"layer {layer.name!r}: unknown bottom blob {blob!r}")
            available.discard(blob)
        in_place = []
        for ti, blob in enumerate(layer.top):
            same = ti < len(layer.bottom) and layer.bottom[ti] == blob
            if blob in blobs and not same:
                raise NetDefinitionError(f"layer {layer.name!r}: top blob {blob!r} produced by multiple sources")
            in_place.append(same)
            if not same:
                blobs.append(blob)
            available.add(blob)
            if layer.type == "Input":
                inputs.append(blob)
        layers.append(GraphLayer(layer, in_place))
    return NetGraph(name=net.name, state=state, layers=layers, inputs=inputs, outputs=sorted(available),
                    blobs=blobs, force_backward=net.force_backward)
