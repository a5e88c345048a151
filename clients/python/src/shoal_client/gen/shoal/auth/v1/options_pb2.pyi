from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
SCOPE_ADMIN: Scope
SCOPE_FIELD_NUMBER: _ClassVar[int]
SCOPE_INTERNAL: Scope
SCOPE_PREDICT: Scope
SCOPE_PUBLIC: Scope
SCOPE_READ: Scope
SCOPE_UNSPECIFIED: Scope
SCOPE_WRITE: Scope
scope: _descriptor.FieldDescriptor

class Scope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
