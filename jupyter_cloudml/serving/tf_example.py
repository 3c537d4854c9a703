"""`tf.train.Example` without TensorFlow: its schema (tensorflow/core/example/{example,feature}
.proto) declared to protobuf, which parses the bytes; an Example becomes one instance.

An instance is the features' values in feature-name order, flattened (a feature of one value
gives one number); bytes features are UTF-8 text.
"""

from __future__ import annotations

import functools
from typing import Any

_LISTS = (("BytesList", 12), ("FloatList", 2), ("Int64List", 3))  # value types (protobuf enum)


@functools.cache
def _example_class() -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="cloudml_tf_example.proto", package="tensorflow", syntax="proto3"
    )
    for name, kind in _LISTS:
        message = proto.message_type.add(name=name)
        packed = (
            {} if kind == f.TYPE_BYTES else {"options": descriptor_pb2.FieldOptions(packed=True)}
        )
        message.field.add(name="value", number=1, type=kind, label=f.LABEL_REPEATED, **packed)
    feature = proto.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, (name, _) in enumerate(_LISTS, start=1):
        field = feature.field.add(
            name=name[0].lower() + name[1:].replace("List", "_list"),
            number=number,
            type=f.TYPE_MESSAGE,
            type_name=f".tensorflow.{name}",
            label=f.LABEL_OPTIONAL,
        )
        field.oneof_index = 0
    features = proto.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry", options={"map_entry": True})
    entry.field.add(name="key", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    entry.field.add(
        name="value",
        number=2,
        type=f.TYPE_MESSAGE,
        type_name=".tensorflow.Feature",
        label=f.LABEL_OPTIONAL,
    )
    features.field.add(
        name="feature",
        number=1,
        type=f.TYPE_MESSAGE,
        type_name=".tensorflow.Features.FeatureEntry",
        label=f.LABEL_REPEATED,
    )
    example = proto.message_type.add(name="Example")
    example.field.add(
        name="features",
        number=1,
        type=f.TYPE_MESSAGE,
        type_name=".tensorflow.Features",
        label=f.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


def example_bytes(features: dict[str, list[Any]]) -> bytes:
    """A serialized Example of `features` (name -> list of ints, floats or bytes)."""
    example = _example_class()()
    for name, values in features.items():
        feature = example.features.feature[name]
        if all(isinstance(v, bytes) for v in values):
            feature.bytes_list.value.extend(values)
        elif all(isinstance(v, int) for v in values):
            feature.int64_list.value.extend(values)
        else:
            feature.float_list.value.extend(float(v) for v in values)
    data: bytes = example.SerializeToString()
    return data


def decode_example(data: bytes) -> list[Any]:
    """The instance in a serialized Example, or ValueError saying why there is none."""
    from google.protobuf.message import DecodeError

    example = _example_class()()
    try:
        example.ParseFromString(data)
    except DecodeError as exc:
        raise ValueError(f"not a tf.train.Example: {exc}") from None
    values: list[Any] = []
    for name in sorted(example.features.feature):
        feature = example.features.feature[name]
        kind = feature.WhichOneof("kind")
        if kind is None:
            raise ValueError(f"feature {name!r} holds no values")
        items = list(getattr(feature, kind).value)
        if kind == "bytes_list":
            try:
                items = [item.decode("utf-8") for item in items]
            except UnicodeDecodeError:
                raise ValueError(f"feature {name!r} holds bytes that are not UTF-8") from None
        values += items
    if not values:
        raise ValueError("the Example has no features")
    return values
