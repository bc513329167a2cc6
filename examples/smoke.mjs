#!/usr/bin/env node
// Puts test123 through GlobalScale with the JavaScript SDK v3, reads it back, shows its version
// and its audit record, read straight from the home region: the sidecar refuses every request
// that names its audit table. Start the local stack first (deploy/local/up --detach), then:
//
//   npm ci --prefix examples     # once: @aws-sdk/client-dynamodb, as examples/package-lock.json pins it
//   node examples/smoke.mjs
//
// The only change an application makes to use GlobalScale is `endpoint`. The keys are dummies on
// purpose: the sidecar re-signs every request with its own credentials. Each run writes with the
// Version it read, so the sidecar's optimistic lock stores the next one (1, 2, 3, ...).
//
//   GLOBALSCALE_ENDPOINT        the sidecar (default http://localhost:8000)
//   GLOBALSCALE_AUDIT_ENDPOINT  the home region's endpoint, where to read GlobalCatalog-audit
//                               (default http://localhost:8001, the local stack's us-east-1, read
//                               with the dummy keys); when set, read with the default AWS
//                               credential chain, e.g. terraform/'s auditor role
//   GLOBALSCALE_HOME_REGION     the sidecar's first region, its key prefix (default us-east-1)

import { readFileSync } from "node:fs";

let sdk;
try {
  sdk = await import("@aws-sdk/client-dynamodb");
} catch {
  console.error("smoke.mjs: @aws-sdk/client-dynamodb is missing; run: npm ci --prefix examples");
  process.exit(1);
}
const { DynamoDBClient, GetItemCommand, PutItemCommand, QueryCommand } = sdk;

const ENDPOINT = process.env.GLOBALSCALE_ENDPOINT || "http://localhost:8000";
const AUDIT_ENDPOINT = process.env.GLOBALSCALE_AUDIT_ENDPOINT || "";
const LOCAL_HOME_REGION = "http://localhost:8001";
const AUDIT_AT = AUDIT_ENDPOINT || LOCAL_HOME_REGION;
const HOME_REGION = process.env.GLOBALSCALE_HOME_REGION || "us-east-1";
const DUMMY_KEYS = { accessKeyId: "app", secretAccessKey: "app" };
const TABLE = "GlobalCatalog";
const KEY = { ItemID: { S: "test123" }, Category: { S: "Demo" } };
const AUDIT_WAIT_SECONDS = 30;

function fail(message) {
  console.error(`smoke.mjs: FAIL: ${message}`);
  process.exit(1);
}

const plain = (item) => Object.fromEntries(Object.entries(item).map(([k, v]) => [k, Object.values(v)[0]]));

async function putAndRead(client) {
  const manifest = new URL("node_modules/@aws-sdk/client-dynamodb/package.json", import.meta.url);
  const sdkVersion = JSON.parse(readFileSync(manifest, "utf8")).version;
  console.log(`== put test123 through ${ENDPOINT} (@aws-sdk/client-dynamodb ${sdkVersion})`);
  const read = async () =>
    (await client.send(new GetItemCommand({ TableName: TABLE, Key: KEY, ConsistentRead: true }))).Item;
  const before = await read();
  const item = { ...KEY, Name: { S: "Example" } };
  // The version this writer read: one that read an older version gets a
  // ConditionalCheckFailedException instead of overwriting.
  if (before?.Version) item.Version = before.Version;
  await client.send(new PutItemCommand({ TableName: TABLE, Item: item }));
  const after = await read();
  if (!after) fail("GetItem found nothing after the put");
  console.log("read back:", JSON.stringify(plain(after)));
  if (after.Name?.S !== "Example") fail(`read back ${JSON.stringify(after)}, not the item just put`);
  const version = Number(after.Version.N);
  const expected = before?.Version ? Number(before.Version.N) + 1 : 1;
  if (version !== expected) fail(`Version ${version}, expected ${expected}`);
  console.log(`version: ${version}`);
  return version;
}

async function showAudit(version) {
  // Never through the sidecar: it answers AccessDeniedException to any request naming its audit
  // table. DynamoDB Local accepts any key.
  const client = AUDIT_ENDPOINT
    ? new DynamoDBClient({ endpoint: AUDIT_ENDPOINT, region: HOME_REGION })
    : new DynamoDBClient({ endpoint: AUDIT_AT, region: HOME_REGION, credentials: DUMMY_KEYS });
  const itemKey = `${TABLE}#${HOME_REGION}#test123#Demo`;
  // The record is shipped from the sidecar's spool within milliseconds; wait a little for it.
  const deadline = Date.now() + AUDIT_WAIT_SECONDS * 1000;
  for (;;) {
    const { Items } = await client.send(
      new QueryCommand({
        TableName: `${TABLE}-audit`,
        KeyConditionExpression: "ItemKey = :k",
        ExpressionAttributeValues: { ":k": { S: itemKey } },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    if (Items.length > 0 && Items[0].Version?.N === String(version)) {
      const r = plain(Items[0]);
      console.log(
        `audit record: ItemKey ${r.ItemKey}, EventId ${r.EventId}: ${r.Operation} by ${r.Principal}` +
          ` in ${r.Region} at ${r.Timestamp}, Version ${r.Version}, Outcome ${r.Outcome}`,
      );
      return;
    }
    if (Date.now() > deadline) {
      fail(`no audit record of Version ${version} under ItemKey ${itemKey} after ${AUDIT_WAIT_SECONDS}s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// `work`'s result; a refused connection to `endpoint` ends the run with a hint.
async function reaching(endpoint, work) {
  try {
    return await work();
  } catch (err) {
    if (err.code === "ECONNREFUSED" || err.cause?.code === "ECONNREFUSED") {
      console.error(`smoke.mjs: nothing answers on ${endpoint}; is the stack up? (deploy/local/up --detach)`);
      process.exit(1);
    }
    throw err;
  }
}

const client = new DynamoDBClient({ endpoint: ENDPOINT, region: "us-east-1", credentials: DUMMY_KEYS });
const version = await reaching(ENDPOINT, () => putAndRead(client));
await reaching(AUDIT_AT, () => showAudit(version));
console.log("smoke.mjs: OK");
