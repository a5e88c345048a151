# %% [markdown]
# # Shoal from Python
#
# Classify images with a trained model, look at the model's versions and
# replay the training job behind them. Each `# %%` cell runs in Jupyter or
# VS Code; as a script it runs top to bottom:
#
#     PYTHONPATH=clients/python/src python3 clients/python/examples/quickstart.py fashion shoe.png bag.png
#
# The server and token come from $SHOAL_ADDR (default localhost:9090) and
# $SHOAL_TOKEN: predicting needs no token by default, the registry and the
# trainer need one with the read scope.

# %%
import sys

import shoal_client
from shoal_client import pb

MODEL = "fashion"
IMAGES = ["shoe.png", "bag.png"]
if __name__ == "__main__" and "ipykernel" not in sys.modules and len(sys.argv) > 2:
    MODEL, IMAGES = sys.argv[1], sys.argv[2:]

client = shoal_client.Client()

# %% [markdown]
# All images go in one request; the server batches them with other callers'.

# %%
resp = client.predict(IMAGES, model=MODEL, top_k=3)
for name, result in zip(IMAGES, resp.results):
    print(f"{name}: " + "  ".join(f"{s.label} {s.probability:.4f}" for s in result.labels))
print(f"answered by {resp.model} v{resp.version}")

# %% [markdown]
# Everything else goes through the generated stubs, with the client's token.

# %%
versions = client.registry.ListVersions(pb.registry.ListVersionsRequest(model=resp.model)).versions
for v in versions:
    print(f"{v.model} v{v.version}: {v.architecture}, test accuracy {v.metrics.test_accuracy:.4f}, "
          f"aliases {list(v.aliases)}")

# %% [markdown]
# `watch_job` replays a job's events and follows it live until it ends,
# reconnecting (without repeating or losing an event) if the connection drops.

# %%
served = next(v for v in versions if v.version == resp.version)
if served.lineage.job_id:
    for ev in client.watch_job(served.lineage.job_id):
        kind = ev.WhichOneof("event")
        if kind == "epoch":
            e = ev.epoch
            print(f"epoch {e.epoch}: train loss {e.train_loss:.4f}, val accuracy {e.val_accuracy:.4f}")
        elif kind == "state":
            print("job", pb.trainer.JobState.Name(ev.state.state).removeprefix("JOB_STATE_"))

# %% [markdown]
# Failures are typed exceptions, by gRPC status code.

# %%
try:
    client.predict(IMAGES[0], model="no-such-model")
except shoal_client.NotFound as err:
    print("not found:", err.details())

client.close()
