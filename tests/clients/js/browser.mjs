// The JavaScript SDK v3 in a web page (bundled by esbuild for the browser, run by headless
// Chromium in tests/browser.rs): the page's query names the sidecar, the table and an item
// id; the outcome of ListTables, PutItem and GetItem through the sidecar goes into
// <pre id="result"> as JSON, an error as its name and message, and is posted back to the
// page's server.
import {
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";

const params = new URLSearchParams(window.location.search);
const table = params.get("table");
const id = params.get("id");
const client = new DynamoDBClient({
  endpoint: params.get("endpoint"),
  region: "us-east-1",
  credentials: { accessKeyId: "AKIDCLIENT", secretAccessKey: "client-secret" },
  // One attempt: a refused origin is an error at once, not after the SDK's back-off.
  maxAttempts: 1,
});
const key = { ItemID: { S: id }, Category: { S: "browser" } };
const result = {};
try {
  result.tables = (await client.send(new ListTablesCommand({}))).TableNames;
  await client.send(
    new PutItemCommand({ TableName: table, Item: { ...key, From: { S: "chromium" } } }),
  );
  const got = await client.send(
    new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }),
  );
  result.item = got.Item?.From?.S ?? null;
  result.requestId = got.$metadata.requestId ?? null;
} catch (e) {
  result.error = `${e.name}: ${e.message}`;
}
document.getElementById("result").textContent = JSON.stringify(result);
// The test waits for this, on the page's own origin (no CORS involved).
await fetch("/result", { method: "POST", body: JSON.stringify(result) });
