// The JavaScript SDK v3's signatures against a sidecar that checks them ([auth] mode = "sigv4"):
// run by tests/auth.rs. With the SDK's defaults and the keys of a configured client, ListTables,
// PutItem and GetItem are served; the same client with a wrong secret gets the SDK's typed
// InvalidSignatureException. Environment: ENDPOINT, ACCESS_KEY_ID, SECRET_ACCESS_KEY, TABLE.
// Prints one JSON line of results.

import {
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";

const { ENDPOINT, ACCESS_KEY_ID, SECRET_ACCESS_KEY, TABLE } = process.env;
const client = (secretAccessKey) =>
  new DynamoDBClient({
    endpoint: ENDPOINT,
    region: "us-east-1",
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey },
    maxAttempts: 1,
  });

const signed = client(SECRET_ACCESS_KEY);
const item = { ItemID: { S: "js-signing" }, Category: { S: "x" }, Name: { S: "signed" } };
const out = {};
out.tables = (await signed.send(new ListTablesCommand({}))).TableNames;
await signed.send(new PutItemCommand({ TableName: TABLE, Item: item }));
const got = await signed.send(
  new GetItemCommand({ TableName: TABLE, Key: { ItemID: item.ItemID, Category: item.Category } }),
);
out.read_back = got.Item?.Name?.S ?? null;
try {
  await client("wrong-secret").send(new ListTablesCommand({}));
  out.wrong_secret = "served";
} catch (err) {
  out.wrong_secret = err.name;
}
process.stdout.write(`${JSON.stringify(out)}\n`);
