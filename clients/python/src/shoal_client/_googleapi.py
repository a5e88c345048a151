"""The google.api protos (HTTP annotations, field behaviour) that Shoal's stubs import.

A process's default descriptor pool refuses two different files of one name,
so when googleapis-common-protos is installed (most environments that use
Google's client libraries have it) its modules are used; otherwise the copies
generated into shoal_client.gen.
"""

try:
    from google.api import annotations_pb2, field_behavior_pb2, http_pb2, httpbody_pb2
except ImportError:
    from shoal_client.gen.google.api import annotations_pb2, field_behavior_pb2, http_pb2, httpbody_pb2

__all__ = ["annotations_pb2", "field_behavior_pb2", "http_pb2", "httpbody_pb2"]
