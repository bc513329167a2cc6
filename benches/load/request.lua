-- wrk script of the load harness: POSTs one DynamoDB request, with the headers an AWS SDK
-- sends, and prints what it measured as one JSON line for benches/load/run to read.
--
-- LOAD_TARGET: the operation (GetItem, PutItem, ...); LOAD_BODY: a file holding the body.

local target = os.getenv("LOAD_TARGET")
local body_file = os.getenv("LOAD_BODY")
local f = assert(io.open(body_file, "rb"), "cannot open LOAD_BODY " .. tostring(body_file))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
wrk.headers["X-Amz-Target"] = "DynamoDB_20120810." .. target
wrk.headers["X-Amz-Date"] = "20260101T000000Z"
-- SigV4's shape, as an SDK signs it: the sidecar under [auth] mode = "none" drops it
-- unchecked and signs its own, nginx and the canned region ignore it; it is here so every
-- target parses and forwards the same headers a real client sends.
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDLOADCLIENT/20260101/us-east-1/dynamodb/aws4_request, "
  .. "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
  .. "Signature=" .. string.rep("0f", 32)
wrk.headers["User-Agent"] = "aws-sdk-rust/1.3 os/linux lang/rust (globalscale load harness)"

function done(summary, latency, requests)
  local e = summary.errors
  -- Latencies in microseconds, wrk's own unit.
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
