"""Shoal's protobuf messages and enums, one module per service, for the raw stubs::

    from shoal_client import pb
    client.trainer.StartTraining(pb.trainer.StartTrainingRequest(spec=pb.trainer.JobSpec(dataset="fish")))

``auth_options`` holds the token scopes (``SCOPE_READ``, ...); ``oip`` is the
Open Inference Protocol (package ``inference``). The generated
modules themselves are under :mod:`shoal_client.gen`, by proto path.
"""

from shoal_client.gen.inference import grpc_predict_v2_pb2 as oip
from shoal_client.gen.shoal.auth.v1 import auth_pb2 as auth
from shoal_client.gen.shoal.auth.v1 import options_pb2 as auth_options
from shoal_client.gen.shoal.dataset.v1 import dataset_pb2 as dataset
from shoal_client.gen.shoal.inference.v1 import inference_pb2 as inference
from shoal_client.gen.shoal.registry.v1 import registry_pb2 as registry
from shoal_client.gen.shoal.trainer.v1 import trainer_pb2 as trainer

__all__ = ["auth", "auth_options", "dataset", "inference", "oip", "registry", "trainer"]
