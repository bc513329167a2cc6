// The JavaScript SDK v3 against the sidecar, as an application would use it: the client is built
// with the SDK's defaults (retry mode, attempts, checksums, the Node HTTP handler) and only the
// endpoint, region and keys set, so what passes here is what a stock Node service gets.
//
// Run by tests/js_client.rs. Environment:
//   ENDPOINT  the sidecar, http://127.0.0.1:PORT (required)
//   TABLE     a table keyed ItemID (S) / Category (S); default GlobalCatalog
//   RUN_ID    makes every key of this run unique, so runs never see each other's items
//
// Prints one JSON line per step ({"step", "ok", ...}) and a last {"step":"done"} line; on any
// mismatch prints {"ok":false,"error"} for that step, the reason on stderr, and exits 1. The
// Rust side checks the lines as well as the exit code, so a script that stops early is caught.

import { isDeepStrictEqual } from "node:util";
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  TransactGetItemsCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  paginateQuery,
} from "@aws-sdk/client-dynamodb";

const ENDPOINT = process.env.ENDPOINT;
const TABLE = process.env.TABLE || "GlobalCatalog";
const RUN = process.env.RUN_ID || `${process.pid}-${Date.now()}`;

// DynamoDB may leave part of a batch unprocessed under load; an application loops on it, and
// so do we, but a batch that never completes is a failure rather than a hang.
const BATCH_ROUNDS = 8;
const QUERY_ITEMS = 25;
const QUERY_PAGE = 5;
const BATCH_ITEMS = 10;

if (!ENDPOINT) {
  console.error("scenario.mjs: ENDPOINT is not set (the sidecar's http://127.0.0.1:PORT)");
  process.exit(2);
}

const client = new DynamoDBClient({
  endpoint: ENDPOINT,
  region: "us-east-1",
  credentials: { accessKeyId: "js-client", secretAccessKey: "js-secret" },
});

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
const key = (itemId, category) => ({ ItemID: S(itemId), Category: S(category) });
const id = (name) => `js-${RUN}-${name}`;
// About 1 KB per item, different per item, so a page that came back from the wrong place or
// truncated shows up as a mismatch, not just a wrong count.
const payload = (n) => `${String(n).padStart(4, "0")}:`.padEnd(1024, String.fromCharCode(97 + (n % 26)));

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

async function getItem(k) {
  const out = await send(new GetItemCommand({ TableName: TABLE, Key: k, ConsistentRead: true }));
  return out.Item;
}

const steps = [];
const step = (name, run) => steps.push({ name, run });

const putItem = {
  ...key(id("put"), "tools"),
  Name: S("Wrench"),
  Price: { N: "12.5" },
  Tags: { SS: ["hand", "steel"] },
  Stock: { M: { eu: { N: "3" }, us: { N: "7" } } },
};

step("put", async () => {
  const out = await send(new PutItemCommand({ TableName: TABLE, Item: putItem }));
  expectEqual(out.$metadata.httpStatusCode, 200, "PutItem status");
  return {};
});

step("get", async () => {
  const item = await getItem(key(id("put"), "tools"));
  expect(item, "GetItem: no Item for the key just put");
  // String sets come back in no particular order.
  const normalized = { ...item, Tags: { SS: [...item.Tags.SS].sort() } };
  expectEqual(normalized, putItem, "GetItem Item");
  return { attributes: Object.keys(item).length };
});

step("paginated_query", async () => {
  const pk = id("query");
  const categories = Array.from({ length: QUERY_ITEMS }, (_, n) => `c-${String(n).padStart(3, "0")}`);
  await Promise.all(
    categories.map((category, n) =>
      send(new PutItemCommand({ TableName: TABLE, Item: { ...key(pk, category), Payload: S(payload(n)) } })),
    ),
  );
  const seen = [];
  const pageSizes = [];
  const pages = paginateQuery(
    { client, pageSize: QUERY_PAGE },
    {
      TableName: TABLE,
      KeyConditionExpression: "ItemID = :pk",
      ExpressionAttributeValues: { ":pk": S(pk) },
      ConsistentRead: true,
    },
  );
  for await (const page of pages) {
    count(page.$metadata);
    expect(page.Items.length <= QUERY_PAGE, `Query page of ${page.Items.length} items, Limit ${QUERY_PAGE}`);
    pageSizes.push(page.Items.length);
    for (const item of page.Items) {
      expectEqual(item.ItemID, S(pk), "Query item ItemID");
      const n = seen.length;
      expectEqual(item.Category, S(categories[n]), `Query item ${n} Category (order, exactly once)`);
      expectEqual(item.Payload, S(payload(n)), `Query item ${n} Payload`);
      seen.push(item.Category.S);
    }
  }
  expectEqual(seen.length, QUERY_ITEMS, "Query items in all pages");
  expect(pageSizes.length >= QUERY_ITEMS / QUERY_PAGE, `Query came back in ${pageSizes.length} pages`);
  return { items: seen.length, pages: pageSizes };
});

step("conditional_put_fails", async () => {
  try {
    await send(
      new PutItemCommand({
        TableName: TABLE,
        Item: { ...key(id("put"), "tools"), Name: S("Overwritten") },
        ConditionExpression: "attribute_not_exists(ItemID)",
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
  } catch (err) {
    expect(
      err instanceof ConditionalCheckFailedException,
      `expected a ConditionalCheckFailedException, got ${err.name}: ${err.message}`,
    );
    expectEqual(err.name, "ConditionalCheckFailedException", "error name");
    expectEqual(err.$metadata.httpStatusCode, 400, "error status");
    // A failed condition is an answer, not a fault: a retry would fail the same way.
    expectEqual(err.$metadata.attempts, 1, "attempts for a failed condition");
    expectEqual(err.Item?.Name, S("Wrench"), "ALL_OLD Item on the failed condition");
    const item = await getItem(key(id("put"), "tools"));
    expectEqual(item.Name, S("Wrench"), "item after the failed conditional put");
    return { error: err.name, status: err.$metadata.httpStatusCode };
  }
  throw new Mismatch("conditional PutItem on an existing item succeeded");
});

step("batch_write_get", async () => {
  const keys = Array.from({ length: BATCH_ITEMS }, (_, n) => key(id("batch"), `b-${n}`));
  const items = keys.map((k, n) => ({ ...k, Index: { N: String(n) } }));

  let requests = { [TABLE]: items.map((Item) => ({ PutRequest: { Item } })) };
  let writeRounds = 0;
  while (Object.keys(requests).length > 0) {
    expect(writeRounds < BATCH_ROUNDS, `BatchWriteItem still unprocessed after ${BATCH_ROUNDS} rounds`);
    const out = await send(new BatchWriteItemCommand({ RequestItems: requests }));
    requests = out.UnprocessedItems ?? {};
    writeRounds += 1;
  }

  let pending = { [TABLE]: { Keys: keys, ConsistentRead: true } };
  const got = [];
  let getRounds = 0;
  while (Object.keys(pending).length > 0) {
    expect(getRounds < BATCH_ROUNDS, `BatchGetItem still unprocessed after ${BATCH_ROUNDS} rounds`);
    const out = await send(new BatchGetItemCommand({ RequestItems: pending }));
    got.push(...(out.Responses?.[TABLE] ?? []));
    pending = out.UnprocessedKeys ?? {};
    getRounds += 1;
  }
  // BatchGetItem answers in no particular order.
  got.sort((a, b) => Number(a.Index.N) - Number(b.Index.N));
  expectEqual(got, items, "BatchGetItem items");
  return { items: got.length, write_rounds: writeRounds, get_rounds: getRounds };
});

step("transact_write_get", async () => {
  const first = { ...key(id("tx"), "one"), Name: S("Hammer") };
  const second = { ...key(id("tx"), "two"), Name: S("Saw") };
  await send(
    new TransactWriteItemsCommand({
      TransactItems: [
        { Put: { TableName: TABLE, Item: first } },
        { Put: { TableName: TABLE, Item: second } },
        {
          ConditionCheck: {
            TableName: TABLE,
            Key: key(id("put"), "tools"),
            ConditionExpression: "attribute_exists(ItemID)",
          },
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
    [first, second],
    "TransactGetItems items",
  );
  return { items: out.Responses.length };
});

step("transact_write_cancelled", async () => {
  try {
    await send(
      new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: TABLE, Item: { ...key(id("tx"), "three"), Name: S("Drill") } } },
          {
            ConditionCheck: {
              TableName: TABLE,
              Key: key(id("put"), "tools"),
              ConditionExpression: "attribute_not_exists(ItemID)",
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
});

step("delete_then_get", async () => {
  const out = await send(
    new DeleteItemCommand({ TableName: TABLE, Key: key(id("put"), "tools"), ReturnValues: "ALL_OLD" }),
  );
  expectEqual(out.Attributes?.Name, S("Wrench"), "DeleteItem ALL_OLD Attributes");
  expectEqual(await getItem(key(id("put"), "tools")), undefined, "GetItem after DeleteItem");
  return {};
});

function emit(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

for (const { name, run } of steps) {
  Object.assign(tally, { calls: 0, retries: 0 });
  try {
    const result = await run();
    emit({ step: name, ok: true, ...tally, ...result });
  } catch (err) {
    // An SDK error here is unexpected (the expected ones are caught inside their steps).
    const what = err instanceof Mismatch ? err.message : `${err.name}: ${err.message}`;
    emit({ step: name, ok: false, ...tally, error: what });
    console.error(`scenario.mjs: step ${name} failed against ${ENDPOINT} (table ${TABLE}): ${what}`);
    process.exit(1);
  }
}
emit({
  step: "done",
  ok: true,
  steps: steps.length,
  request_headers: wire.requestHeaders,
  responses: wire.responses,
  responses_with_crc32: wire.withCrc32,
});
