// The JavaScript SDK v3 against the sidecar, as an application would use it: the client is built
// with the SDK's defaults (retry mode, attempts, checksums, the Node HTTP handler) and only the
// endpoint, region and keys set, so what passes here is what a stock Node service gets.
//
// Runs the steps of tests/clients/scenario.json (which also says what each step checks and which
// environment variables it reads); tests/client_matrix.rs runs it with the SDK that
// tests/clients/js/package-lock.json pins. Prints one JSON line per step and a last
// {"step":"done"} line; on any mismatch prints {"ok":false,"error"} for that step, the reason on
// stderr, and exits 1.

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { isDeepStrictEqual } from "node:util";
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ResourceNotFoundException,
  TransactGetItemsCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  paginateQuery,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";

const scenario = JSON.parse(readFileSync(new URL("../scenario.json", import.meta.url), "utf8"));

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`scenario.mjs: ${name} is not set (see tests/clients/scenario.json)`);
    process.exit(2);
  }
  return value;
}

const ENDPOINT = required("ENDPOINT");
const REGION_ENDPOINT = required("REGION_ENDPOINT");
const HOME_REGION = required("HOME_REGION");
const RUN = process.env.RUN_ID || `${process.pid}-${Date.now()}`;
const PAUSE_AT = process.env.PAUSE_AT || "";
const ACCESS_KEY_ID = "AKIDJSSDKV3";

const TABLE = scenario.table;
const PK = scenario.partition_key;
const SK = scenario.sort_key;
const VERSION = scenario.version_attribute;

const clientFor = (endpoint) =>
  new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: "js-secret" },
  });
const client = clientFor(ENDPOINT);
const region = clientFor(REGION_ENDPOINT);

// What the wire looked like, for the report line at the end: the headers the SDK sends, and
// whether the sidecar's answers carry x-amz-crc32 (the JS SDK does not check it; botocore does).
const wire = { requestHeaders: null, responses: 0, withCrc32: 0 };
client.middlewareStack.add(
  (next) => async (args) => {
    wire.requestHeaders ??= Object.keys(args.request.headers).map((h) => h.toLowerCase()).sort();
    const out = await next(args);
    wire.responses += 1;
    if (out.response.headers["x-amz-crc32"] !== undefined) wire.withCrc32 += 1;
    return out;
  },
  { step: "deserialize", name: "globalscaleWireProbe" },
);

class Mismatch extends Error {}

function expect(condition, message) {
  if (!condition) throw new Mismatch(message);
}

function expectEqual(actual, expected, what) {
  expect(
    isDeepStrictEqual(actual, expected),
    `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`,
  );
}

const S = (value) => ({ S: value });
const N = (value) => ({ N: String(value) });
const key = (itemId, category) => ({ [PK]: S(itemId), [SK]: S(category) });
const id = (name) => `js-${RUN}-${name}`;
const itemKey = () => key(id("item"), scenario.item[SK].S);
const theItem = (version) => ({
  ...scenario.item,
  [PK]: S(id("item")),
  ...(version === undefined ? {} : { [VERSION]: N(version) }),
});
const versioned = (item, version = 1) => ({ ...item, [VERSION]: N(version) });
const payload = (n) =>
  `${String(n).padStart(4, "0")}:`.padEnd(scenario.query.payload_bytes, String.fromCharCode(97 + (n % 26)));
// String sets come back in no particular order.
const normalized = (item) =>
  Object.fromEntries(
    Object.entries(item).map(([name, value]) => [name, value.SS ? { SS: [...value.SS].sort() } : value]),
  );

// A step's calls and the SDK's retries among them: retries through the sidecar are worth
// seeing even when the step passes.
const tally = { calls: 0, retries: 0 };
function count(metadata) {
  tally.calls += 1;
  tally.retries += Math.max((metadata?.attempts ?? 1) - 1, 0);
}
async function send(command) {
  try {
    const out = await client.send(command);
    count(out.$metadata);
    return out;
  } catch (err) {
    count(err.$metadata);
    throw err;
  }
}

// The Query of the item's audit records (ItemKey <table>#<stored key>#<category>), as either
// endpoint takes it.
const auditQuery = () =>
  new QueryCommand({
    TableName: scenario.audit_table,
    KeyConditionExpression: "ItemKey = :k",
    ExpressionAttributeValues: { ":k": S(`${TABLE}#${HOME_REGION}#${id("item")}#${scenario.item[SK].S}`) },
    ConsistentRead: true,
  });

async function getItem(k) {
  const out = await send(new GetItemCommand({ TableName: TABLE, Key: k, ConsistentRead: true }));
  return out.Item;
}

let stdinLines;
async function checkpoint(name) {
  if (name !== PAUSE_AT) return;
  emit({ pause: name });
  stdinLines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const { done } = await stdinLines.next();
  expect(!done, `stdin closed at the pause point ${name}`);
}

async function writeBatch(requests) {
  let rounds = 0;
  while (Object.keys(requests).length > 0) {
    expect(rounds < scenario.batch_rounds, `BatchWriteItem still unprocessed after ${rounds} rounds`);
    const out = await send(new BatchWriteItemCommand({ RequestItems: requests }));
    requests = out.UnprocessedItems ?? {};
    rounds += 1;
  }
  return rounds;
}

const steps = {
  async create_table_if_missing() {
    try {
      await send(new DescribeTableCommand({ TableName: TABLE }));
      return { created: false };
    } catch (err) {
      if (!(err instanceof ResourceNotFoundException)) throw err;
    }
    await send(
      new CreateTableCommand({
        TableName: TABLE,
        AttributeDefinitions: [
          { AttributeName: PK, AttributeType: "S" },
          { AttributeName: SK, AttributeType: "S" },
        ],
        KeySchema: [
          { AttributeName: PK, KeyType: "HASH" },
          { AttributeName: SK, KeyType: "RANGE" },
        ],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    await waitUntilTableExists({ client, minDelay: 1, maxWaitTime: 90 }, { TableName: TABLE });
    return { created: true };
  },

  async put() {
    const out = await send(new PutItemCommand({ TableName: TABLE, Item: theItem() }));
    expectEqual(out.$metadata.httpStatusCode, 200, "PutItem status");
  },

  async get() {
    const item = await getItem(itemKey());
    expect(item, "GetItem: no Item for the key just put");
    expectEqual(normalized(item), normalized(theItem(1)), "GetItem Item");
  },

  async versioned_update() {
    const out = await send(
      new UpdateItemCommand({
        TableName: TABLE,
        Key: itemKey(),
        UpdateExpression: `SET #name = :name, ${VERSION} = :read`,
        ExpressionAttributeNames: { "#name": "Name" },
        ExpressionAttributeValues: { ":name": S(scenario.updated_name), ":read": N(1) },
        ReturnValues: "ALL_NEW",
      }),
    );
    expectEqual(out.Attributes.Name, S(scenario.updated_name), "ALL_NEW Name");
    expectEqual(out.Attributes[VERSION], N(2), "ALL_NEW Version");
  },

  async conditional_put_fails() {
    try {
      await send(
        new PutItemCommand({ TableName: TABLE, Item: theItem(1), ReturnValuesOnConditionCheckFailure: "ALL_OLD" }),
      );
    } catch (err) {
      expect(
        err instanceof ConditionalCheckFailedException,
        `expected a ConditionalCheckFailedException, got ${err.name}: ${err.message}`,
      );
      expectEqual(err.$metadata.httpStatusCode, 400, "error status");
      // A failed condition is an answer, not a fault: a retry would fail the same way.
      expectEqual(err.$metadata.attempts, 1, "attempts for a failed condition");
      expectEqual(err.Item?.[VERSION], N(2), "ALL_OLD Version on the failed condition");
      const item = await getItem(itemKey());
      expectEqual(item.Name, S(scenario.updated_name), "Name after the failed put");
      expectEqual(item[VERSION], N(2), "Version after the failed put");
      return { error: err.name };
    }
    throw new Mismatch("PutItem with a stale Version succeeded");
  },

  async stored_upstream() {
    const plain = itemKey();
    const prefixed = { ...plain, [PK]: S(`${HOME_REGION}#${plain[PK].S}`) };
    const direct = async (k) =>
      (await region.send(new GetItemCommand({ TableName: TABLE, Key: k, ConsistentRead: true }))).Item;
    const stored = await direct(prefixed);
    expect(stored, `nothing stored under ${prefixed[PK].S} in ${REGION_ENDPOINT}`);
    expectEqual(stored[VERSION], N(2), "stored Version");
    expectEqual(await direct(plain), undefined, "item stored under the plain key");
    return { stored_key: prefixed[PK].S };
  },

  async paginated_query() {
    const pk = id("query");
    const pageSize = scenario.query.page_size;
    const items = Array.from({ length: scenario.query.items }, (_, n) => ({
      ...key(pk, `c-${String(n).padStart(3, "0")}`),
      Payload: S(payload(n)),
    }));
    await writeBatch({ [TABLE]: items.map((Item) => ({ PutRequest: { Item } })) });
    const seen = [];
    const pageSizes = [];
    const pages = paginateQuery(
      { client, pageSize },
      {
        TableName: TABLE,
        KeyConditionExpression: `${PK} = :pk`,
        ExpressionAttributeValues: { ":pk": S(pk) },
        ConsistentRead: true,
      },
    );
    for await (const page of pages) {
      count(page.$metadata);
      expect(page.Items.length <= pageSize, `Query page of ${page.Items.length} items, Limit ${pageSize}`);
      pageSizes.push(page.Items.length);
      for (const item of page.Items) {
        const n = seen.length;
        expect(n < items.length, "Query returned more items than were written");
        expectEqual(item, versioned(items[n]), `Query item ${n} (order, exactly once)`);
        seen.push(item[SK].S);
      }
      if (pageSizes.length === 1) await checkpoint(scenario.pause_point);
    }
    expectEqual(seen.length, items.length, "Query items in all pages");
    expect(pageSizes.length >= items.length / pageSize, `Query came back in ${pageSizes.length} pages`);
    return { items: seen.length, pages: pageSizes };
  },

  async batch_write_get() {
    const keys = Array.from({ length: scenario.batch.items }, (_, n) => key(id("batch"), `b-${n}`));
    const items = keys.map((k, n) => ({ ...k, Index: N(n) }));
    const writeRounds = await writeBatch({ [TABLE]: items.map((Item) => ({ PutRequest: { Item } })) });
    let pending = { [TABLE]: { Keys: keys, ConsistentRead: true } };
    const got = [];
    let getRounds = 0;
    while (Object.keys(pending).length > 0) {
      expect(getRounds < scenario.batch_rounds, `BatchGetItem still unprocessed after ${getRounds} rounds`);
      const out = await send(new BatchGetItemCommand({ RequestItems: pending }));
      got.push(...(out.Responses?.[TABLE] ?? []));
      pending = out.UnprocessedKeys ?? {};
      getRounds += 1;
    }
    // BatchGetItem answers in no particular order.
    got.sort((a, b) => Number(a.Index.N) - Number(b.Index.N));
    expectEqual(got, items.map((item) => versioned(item)), "BatchGetItem items");
    return { items: got.length, write_rounds: writeRounds, get_rounds: getRounds };
  },

  async transaction() {
    const first = { ...key(id("tx"), "one"), Name: S("Hammer") };
    const second = { ...key(id("tx"), "two"), Name: S("Saw") };
    await send(
      new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: TABLE, Item: first } },
          { Put: { TableName: TABLE, Item: second } },
          {
            ConditionCheck: { TableName: TABLE, Key: itemKey(), ConditionExpression: `attribute_exists(${PK})` },
          },
        ],
      }),
    );
    const out = await send(
      new TransactGetItemsCommand({
        TransactItems: [
          { Get: { TableName: TABLE, Key: key(id("tx"), "one") } },
          { Get: { TableName: TABLE, Key: key(id("tx"), "two") } },
        ],
      }),
    );
    expectEqual(
      out.Responses.map((r) => r.Item),
      [versioned(first), versioned(second)],
      "TransactGetItems items",
    );
    return { items: out.Responses.length };
  },

  async transaction_cancelled() {
    try {
      await send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Put: { TableName: TABLE, Item: { ...key(id("tx"), "three"), Name: S("Drill") } } },
            {
              ConditionCheck: {
                TableName: TABLE,
                Key: itemKey(),
                ConditionExpression: `attribute_not_exists(${PK})`,
              },
            },
          ],
        }),
      );
    } catch (err) {
      expect(
        err instanceof TransactionCanceledException,
        `expected a TransactionCanceledException, got ${err.name}: ${err.message}`,
      );
      const codes = (err.CancellationReasons ?? []).map((r) => r.Code);
      expectEqual(codes, ["None", "ConditionalCheckFailed"], "CancellationReasons codes");
      expectEqual(await getItem(key(id("tx"), "three")), undefined, "item of the cancelled transaction");
      return { error: err.name, reasons: codes };
    }
    throw new Mismatch("TransactWriteItems with a failing ConditionCheck succeeded");
  },

  async delete() {
    const out = await send(
      new DeleteItemCommand({
        TableName: TABLE,
        Key: itemKey(),
        ConditionExpression: `${VERSION} = :v`,
        ExpressionAttributeValues: { ":v": N(2) },
        ReturnValues: "ALL_OLD",
      }),
    );
    expectEqual(out.Attributes?.[VERSION], N(2), "DeleteItem ALL_OLD Version");
    expectEqual(await getItem(itemKey()), undefined, "GetItem after DeleteItem");
  },

  async audit_history() {
    const deadline = Date.now() + scenario.audit_wait_seconds * 1000;
    let records;
    for (;;) {
      // Straight from the region: the sidecar refuses its audit table (audit_refused).
      const out = await region.send(auditQuery());
      records = out.Items;
      if (records.length >= 3 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const s = (name) => records.map((r) => r[name]?.S);
    expectEqual(s("Operation"), ["PutItem", "UpdateItem", "DeleteItem"], "audit Operations");
    expectEqual(records.map((r) => r[VERSION]?.N), ["1", "2", "2"], "audit Versions");
    expectEqual(s("Outcome"), ["accepted", "accepted", "accepted"], "audit Outcomes");
    expectEqual(s("Principal"), [ACCESS_KEY_ID, ACCESS_KEY_ID, ACCESS_KEY_ID], "audit Principals");
    expectEqual(
      records.map((r) => r.Key),
      [0, 1, 2].map(() => ({ M: itemKey() })),
      "audit Keys (as the client sees them)",
    );
    return { regions: s("Region") };
  },

  async audit_refused() {
    try {
      await send(auditQuery());
    } catch (err) {
      expectEqual(err.name, "AccessDeniedException", "error name");
      expectEqual(err.$metadata.httpStatusCode, 400, "error status");
      expectEqual(err.$metadata.attempts, 1, "attempts for a refusal");
      return { error: err.name };
    }
    throw new Mismatch("Query of the audit table through the sidecar succeeded");
  },
};

function emit(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

for (const { name } of scenario.steps) {
  const run = steps[name];
  Object.assign(tally, { calls: 0, retries: 0 });
  try {
    if (!run) throw new Mismatch(`scenario.mjs implements no step ${name}`);
    const result = (await run()) ?? {};
    emit({ step: name, ok: true, ...tally, ...result });
  } catch (err) {
    // An SDK error here is unexpected (the expected ones are caught inside their steps).
    const what = err instanceof Mismatch ? err.message : `${err.name}: ${err.message}`;
    emit({ step: name, ok: false, ...tally, error: what });
    console.error(`scenario.mjs: step ${name} failed against ${ENDPOINT}: ${what}`);
    process.exit(1);
  }
}
emit({
  step: "done",
  ok: true,
  steps: scenario.steps.length,
  request_headers: wire.requestHeaders,
  responses: wire.responses,
  responses_with_crc32: wire.withCrc32,
});
// The pause point's reader keeps stdin open; nothing is left to wait for.
process.exit(0);
