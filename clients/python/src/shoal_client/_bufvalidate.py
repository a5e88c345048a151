"""The protovalidate rules (buf/validate/validate.proto) that Shoal's stubs import.

As with the google.api protos (see _googleapi), one process can hold only one
file of that name: when the protovalidate package is installed (it validates
messages in Python) its module is used; otherwise the copy generated into
shoal_client.gen.
"""

try:
    from buf.validate import validate_pb2
except ImportError:
    from shoal_client.gen.buf.validate import validate_pb2

__all__ = ["validate_pb2"]
