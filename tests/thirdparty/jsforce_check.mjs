// Drives sfwa's Salesforce org simulator with jsforce, unchanged, as an integration would drive a
// real org: JWT bearer login, a paged SOQL query (autoFetch follows nextRecordsUrl), a collection
// update and a single-record update, then a CometD subscription with replay -2 (jsforce's streaming
// API with its Replay extension). Records are seeded through the simulator's control API (/__sim/).
//
//   SIM_JSON='{"salesforce_url":…,"salesforce":{…}}' node jsforce_check.mjs
//
// SIM_JSON is the first stdout line of `org_sim` / `sfwa sim`. Prints one line per check and
// finally `thirdparty: N passed, M failed`; exits 0 only if every check passed.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import jsforce from "jsforce";
import jwt from "jsonwebtoken";
import { checkOfficialCometd } from "./cometd_replay.mjs";

// jsforce 3 keeps the streaming extensions in a sub-package (CommonJS, folder entry point), as its
// docs show: `require("jsforce/api/streaming")`.
const { StreamingExtension } = createRequire(import.meta.url)("jsforce/api/streaming");

const sim = JSON.parse(process.env.SIM_JSON ?? "");
const url = sim.salesforce_url;
const creds = sim.salesforce;
const MSG = "WhatsApp_Message__c";
const CHANNEL = "/event/WhatsApp_Outbound__e";
const SEEDED_SENT = Number(process.env.SEED_ROWS ?? 4500); // > 2 pages of 2000
const API_VERSION = "62.0";

let passed = 0;
let failed = 0;
function check(name, ok, detail = "") {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${detail ? ` — ${detail}` : ""}`);
  return ok;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function control(method, path, body) {
  const response = await fetch(`${url}/__sim/${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} /__sim/${path}: HTTP ${response.status} ${text}`);
  return JSON.parse(text);
}

const stats = () => control("GET", "stats");
const calls = (s, endpoint) => s.rest_calls.by_endpoint[endpoint] ?? 0;

// ---- seed: many non-Queued rows (no events) plus three Queued ones (three events, via the Flow)
async function seed() {
  const chunk = 1500;
  for (let start = 0; start < SEEDED_SENT; start += chunk) {
    const rows = [];
    for (let i = start; i < Math.min(start + chunk, SEEDED_SENT); i++) {
      rows.push({ To_Phone__c: `+1650555${String(i).padStart(4, "0")}`, Status__c: "Sent", Body__c: `seed ${i}` });
    }
    await control("POST", `records/${MSG}`, rows);
  }
  const queued = await control(
    "POST",
    `records/${MSG}`,
    [1, 2, 3].map((i) => ({ To_Phone__c: `+4915550000${i}`, Status__c: "Queued", Body__c: `queued ${i}` })),
  );
  return queued.ids;
}

async function main() {
  const queuedIds = await seed();
  const total = SEEDED_SENT + queuedIds.length;
  check("seed via control API", queuedIds.length === 3, `${total} rows`);

  // ---- OAuth 2.0 JWT bearer: jsforce's generic authorize() with the JWT grant
  const assertion = jwt.sign(
    { iss: creds.client_id, sub: creds.username, aud: "https://login.salesforce.com" },
    readFileSync(creds.private_key_path, "utf8"),
    { algorithm: "RS256", expiresIn: 120 },
  );
  const conn = new jsforce.Connection({ loginUrl: url, version: API_VERSION });
  const userInfo = await conn.authorize({
    grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
    assertion,
  });
  check(
    "JWT bearer login (conn.authorize)",
    Boolean(conn.accessToken) && conn.instanceUrl === url && /^005/.test(userInfo.id) && /^00D/.test(userInfo.organizationId),
    `instanceUrl=${conn.instanceUrl} user=${userInfo.id} org=${userInfo.organizationId}`,
  );

  // Record what jsforce puts on the wire (its own request method, wrapped, not replaced).
  const sent = [];
  const request = conn.request.bind(conn);
  conn.request = (req, ...rest) => {
    sent.push(typeof req === "string" ? { method: "GET", url: req } : req);
    return request(req, ...rest);
  };

  // ---- query with autoFetch: follows nextRecordsUrl (GET query/{locator})
  const before = await stats();
  const result = await conn.query(`SELECT Id, Status__c, Body__c FROM ${MSG}`, {
    autoFetch: true,
    maxFetch: 100000,
  });
  const after = await stats();
  const ids = new Set(result.records.map((r) => r.Id));
  check(
    "query autoFetch returns every row",
    result.totalSize === total && result.records.length === total && ids.size === total && result.done === true,
    `totalSize=${result.totalSize} records=${result.records.length} distinct=${ids.size}`,
  );
  const pages = calls(after, "GET query/{locator}") - calls(before, "GET query/{locator}");
  const expectedMore = Math.ceil(total / 2000) - 1;
  check(
    "query followed nextRecordsUrl",
    calls(after, "GET query") - calls(before, "GET query") === 1 && pages === expectedMore,
    `GET query/{locator} ×${pages} (expected ${expectedMore})`,
  );
  check(
    "records carry attributes.type",
    result.records.every((r) => r.attributes?.type === MSG && r.attributes.url.endsWith(r.Id)),
  );

  // ---- collection update (PATCH composite/sobjects) and a single-record update (PATCH sobjects/…)
  const sentRows = result.records.filter((r) => r.Status__c === "Sent");
  const batch = sentRows.slice(0, 3).map((r, i) => ({ Id: r.Id, Status__c: "Delivered", Body__c: `delivered ${i}` }));
  const single = sentRows[3];
  sent.length = 0;
  const collectionBefore = calls(await stats(), "PATCH composite/sobjects");
  const batchResults = await conn.sobject(MSG).update(batch);
  const collectionCall = sent.find((r) => r.method === "PATCH" && /\/composite\/sobjects$/.test(r.url));
  const wireRecords = collectionCall ? JSON.parse(collectionCall.body).records : [];
  const idKey = wireRecords.length ? (Object.hasOwn(wireRecords[0], "id") ? "id" : Object.hasOwn(wireRecords[0], "Id") ? "Id" : "none") : "none";
  check(
    "collection update via PATCH composite/sobjects",
    Boolean(collectionCall) &&
      calls(await stats(), "PATCH composite/sobjects") - collectionBefore === 1 &&
      batchResults.length === 3 &&
      batchResults.every((r, i) => r.success === true && r.id === batch[i].Id && r.errors.length === 0),
    `record id key on the wire: "${idKey}"; results ${JSON.stringify(batchResults.map((r) => r.success))}`,
  );
  check("collection update sent lowercase id", idKey === "id");

  const singleBefore = calls(await stats(), "PATCH sobjects/{object}/{id}");
  const singleResult = await conn.sobject(MSG).update({ Id: single.Id, Status__c: "Read" });
  check(
    "single update via PATCH sobjects/{object}/{id}",
    singleResult.success === true &&
      singleResult.id === single.Id &&
      calls(await stats(), "PATCH sobjects/{object}/{id}") - singleBefore === 1,
    JSON.stringify(singleResult),
  );

  const idList = [...batch.map((r) => r.Id), single.Id].map((id) => `'${id}'`).join(", ");
  const verify = await conn.query(`SELECT Id, Status__c, Body__c FROM ${MSG} WHERE Id IN (${idList})`);
  const byId = new Map(verify.records.map((r) => [r.Id, r]));
  check(
    "updated values read back",
    verify.totalSize === 4 &&
      batch.every((b) => byId.get(b.Id)?.Status__c === "Delivered" && byId.get(b.Id)?.Body__c === b.Body__c) &&
      byId.get(single.Id)?.Status__c === "Read" &&
      byId.get(single.Id)?.Body__c === single.Body__c,
    verify.records.map((r) => `${r.Id}:${r.Status__c}`).join(" "),
  );
  const retrieved = await conn.sobject(MSG).retrieve(single.Id);
  check("retrieve single record", retrieved.Id === single.Id && retrieved.Status__c === "Read");

  // ---- CometD: jsforce streaming client with the Replay extension, replay -2
  const cometdBefore = (await stats()).cometd_requests;
  const authFailures = [];
  const client = conn.streaming.createClient([
    new StreamingExtension.Replay(CHANNEL, -2),
    new StreamingExtension.AuthFailure((message) => authFailures.push(message)),
  ]);
  const events = [];
  let onEvent = () => {};
  const subscription = client.subscribe(CHANNEL, (message) => {
    events.push(message);
    onEvent();
  });
  const waitForEvents = (count, ms, what) =>
    withTimeout(
      new Promise((resolve) => {
        onEvent = () => events.length >= count && resolve();
        onEvent();
      }),
      ms,
      what,
    );
  await withTimeout(subscription, 10000, "subscribe");
  check("streaming subscribe (replay -2)", true);
  await waitForEvents(3, 15000, "replayed events");
  const replayed = events.slice(0, 3).map((e) => e.payload?.Message_Id__c);
  check(
    "replay -2 delivers the seeded Queued records' events",
    JSON.stringify([...replayed].sort()) === JSON.stringify([...queuedIds].sort()),
    replayed.join(" "),
  );
  check(
    "event shape (schema, payload, event.replayId)",
    events.every((e) => typeof e.schema === "string" && e.payload?.CreatedDate && e.event?.replayId !== undefined),
  );

  const live = (await control("POST", `records/${MSG}`, { To_Phone__c: "+491555000099", Status__c: "Queued" })).ids[0];
  await waitForEvents(4, 15000, "live event");
  check("live event after a new Queued record", events[3]?.payload?.Message_Id__c === live, events[3]?.payload?.Message_Id__c);
  check(
    "long-polled /cometd (stats)",
    (await stats()).cometd_requests - cometdBefore >= 3 && authFailures.length === 0,
    `cometd_requests +${(await stats()).cometd_requests - cometdBefore}`,
  );
  client.disconnect();

  // ---- the official CometD JavaScript client, same channel, same token
  const official = await withTimeout(
    checkOfficialCometd({ url, token: conn.accessToken, channel: CHANNEL, expected: 4 }),
    20000,
    "official CometD client",
  );
  check(
    "official CometD client: replay -2 gets all four events",
    JSON.stringify(official.map((e) => e.data.payload.Message_Id__c)) ===
      JSON.stringify(events.slice(0, 4).map((e) => e.payload.Message_Id__c)),
    `${official.length} events`,
  );
}

try {
  await withTimeout(main(), 90000, "checks");
} catch (error) {
  check("no unexpected error", false, error?.stack ?? String(error));
}
console.log(`thirdparty: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
