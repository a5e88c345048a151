// Shoal from TypeScript (or plain JavaScript on Node.js): classify images
// with a trained model, list the model's versions and replay the training
// job behind the one that answered.
//
//   node clients/typescript/examples/quickstart.mjs fashion shoe.png bag.png
//
// The server and token come from $SHOAL_URL (default http://localhost:8080)
// and $SHOAL_TOKEN: predicting needs no token by default, the registry and
// the trainer need one with the read scope.
import { ShoalClient, ShoalError, ok } from "@shoal/client/node";

const [model = "fashion", ...images] = process.argv.slice(2);
if (images.length === 0) images.push("shoe.png", "bag.png");

const shoal = new ShoalClient();

// All images go in one request; the server batches them with other callers'.
const resp = await shoal.predictFiles(images, { model, topK: 3 });
resp.results?.forEach((result, i) => {
  console.log(`${images[i]}: ` + (result.labels ?? []).map((l) => `${l.label} ${l.probability?.toFixed(4)}`).join("  "));
});
console.log(`answered by ${resp.model} v${resp.version}`);

// Every route of the REST API is typed from its OpenAPI document, and
// carries the client's token.
const { versions = [] } = await ok(shoal.api.GET("/v1/models/{model}/versions", { params: { path: { model: resp.model ?? model } } }));
for (const v of versions) {
  console.log(`${v.model} v${v.version}: ${v.architecture}, test accuracy ${v.metrics?.testAccuracy?.toFixed(4)}, aliases [${v.aliases ?? []}]`);
}

// watchJob replays a job's events and follows it live until it ends,
// reconnecting (without repeating or losing an event) if the connection drops.
const served = versions.find((v) => v.version === resp.version);
if (served?.lineage?.jobId) {
  for await (const ev of shoal.watchJob(served.lineage.jobId)) {
    if (ev.epoch) console.log(`epoch ${ev.epoch.epoch}: train loss ${ev.epoch.trainLoss?.toFixed(4)}, val accuracy ${ev.epoch.valAccuracy?.toFixed(4)}`);
    if (ev.state) console.log(`job ${ev.state.state?.replace("JOB_STATE_", "")}`);
  }
}

// Failures are ShoalErrors, with the HTTP status, the gRPC code and the
// server's reason.
try {
  await shoal.predictFiles(images.slice(0, 1), { model: "no-such-model" });
} catch (err) {
  if (!(err instanceof ShoalError) || err.code !== "NOT_FOUND") throw err;
  console.log(`not found (HTTP ${err.status}): ${err.reason}`);
}
