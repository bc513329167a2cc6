#!/usr/bin/env bash
# Puts test123 through GlobalScale with the AWS CLI, reads it back, shows its version and its
# audit record, read straight from the home region: the sidecar refuses every request that names
# its audit table. Start the local stack first (deploy/local/up --detach), then:
#
#   examples/smoke.sh
#
# The keys below are dummies on purpose: the application never holds real AWS credentials,
# because the sidecar re-signs every request with its own. Each run writes with the Version it
# read, so the sidecar's optimistic lock stores the next one (1, 2, 3, ... run after run).
#
#   GLOBALSCALE_ENDPOINT        the sidecar (default http://localhost:8000)
#   GLOBALSCALE_AUDIT_ENDPOINT  the home region's endpoint, where to read GlobalCatalog-audit
#                               (default http://localhost:8001, the local stack's us-east-1, read
#                               with the dummy keys); when set, read with the default AWS
#                               credential chain, e.g. terraform/'s auditor role
#   GLOBALSCALE_HOME_REGION     the sidecar's first region, its key prefix (default us-east-1)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ENDPOINT=${GLOBALSCALE_ENDPOINT:-http://localhost:8000}
AUDIT_ENDPOINT=${GLOBALSCALE_AUDIT_ENDPOINT:-}
LOCAL_HOME_REGION=http://localhost:8001
HOME_REGION=${GLOBALSCALE_HOME_REGION:-us-east-1}
AUDIT_WAIT_SECONDS=30
KEY='{"ItemID": {"S": "test123"}, "Category": {"S": "Demo"}}'

unset AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_DYNAMODB
export AWS_PAGER=""

# The AWS CLI from the repo's venv, else one on PATH, else install it into the venv.
if [[ -x $REPO/.tools/venv/bin/aws ]] && "$REPO/.tools/venv/bin/aws" --version >/dev/null 2>&1; then
    AWS=$REPO/.tools/venv/bin/aws
elif command -v aws >/dev/null 2>&1; then
    AWS=aws
else
    AWS=$("$REPO/deploy/local/ensure-venv" awscli | tail -n 1)/bin/aws
fi

fail() {
    echo "smoke.sh: FAIL: $*" >&2
    exit 1
}

# Through the sidecar, with keys no region knows.
ddb() {
    AWS_ACCESS_KEY_ID=app AWS_SECRET_ACCESS_KEY=app AWS_SESSION_TOKEN='' AWS_DEFAULT_REGION=us-east-1 \
        "$AWS" dynamodb --endpoint-url "$ENDPOINT" "$@"
}

# The audit table, straight from the home region (the sidecar answers AccessDeniedException to
# any request naming it): the local stack's us-east-1 with the dummy keys DynamoDB Local accepts,
# or GLOBALSCALE_AUDIT_ENDPOINT with the caller's own credentials.
audit() {
    if [[ -n $AUDIT_ENDPOINT ]]; then
        AWS_DEFAULT_REGION=$HOME_REGION "$AWS" dynamodb --endpoint-url "$AUDIT_ENDPOINT" "$@"
    else
        AWS_ACCESS_KEY_ID=app AWS_SECRET_ACCESS_KEY=app AWS_SESSION_TOKEN='' AWS_DEFAULT_REGION=$HOME_REGION \
            "$AWS" dynamodb --endpoint-url "$LOCAL_HOME_REGION" "$@"
    fi
}

# http://localhost:8000 -> localhost/8000, the form bash's /dev/tcp wants.
host_port() {
    local rest=${1#*://} port=80
    [[ $1 == https://* ]] && port=443
    rest=${rest%%/*}
    [[ $rest == *:* ]] || rest=$rest:$port
    echo "${rest%:*}/${rest##*:}"
}

if ! (exec 3<>"/dev/tcp/$(host_port "$ENDPOINT")") 2>/dev/null; then
    echo "smoke.sh: nothing answers on $ENDPOINT; is the stack up? (deploy/local/up --detach)" >&2
    exit 1
fi

echo "== put test123 through $ENDPOINT ($("$AWS" --version 2>&1 | cut -d' ' -f1))"
before=$(ddb get-item --table-name GlobalCatalog --key "$KEY" --consistent-read \
    --query 'Item.Version.N' --output text)
item='{"ItemID": {"S": "test123"}, "Category": {"S": "Demo"}, "Name": {"S": "Example"}'
if [[ $before == None ]]; then
    expected=1
else
    # The version this writer read: one that read an older version gets a
    # ConditionalCheckFailedException instead of overwriting.
    item+=", \"Version\": {\"N\": \"$before\"}"
    expected=$((before + 1))
fi
ddb put-item --table-name GlobalCatalog --item "$item}"

read_back=$(ddb get-item --table-name GlobalCatalog --key "$KEY" --consistent-read --output json)
echo "read back: $(tr -d ' \n' <<<"$read_back")"
[[ $read_back == *'"Example"'* ]] || fail "get-item did not return the item just put"
version=$(ddb get-item --table-name GlobalCatalog --key "$KEY" --consistent-read \
    --query 'Item.Version.N' --output text)
[[ $version == "$expected" ]] || fail "Version $version, expected $expected"
echo "version: $version"

# The record is shipped from the sidecar's spool within milliseconds; wait a little for it.
item_key="GlobalCatalog#$HOME_REGION#test123#Demo"
fields='Items[0].[ItemKey.S, EventId.S, Operation.S, Principal.S, Region.S, Timestamp.S, Version.N, Outcome.S]'
deadline=$((SECONDS + AUDIT_WAIT_SECONDS))
while true; do
    record=$(audit query --table-name GlobalCatalog-audit --consistent-read --no-scan-index-forward \
        --key-condition-expression 'ItemKey = :k' \
        --expression-attribute-values "{\":k\": {\"S\": \"$item_key\"}}" \
        --max-items 1 --query "$fields" --output text)
    read -r r_key r_event r_operation r_principal r_region r_time r_version r_outcome <<<"$record" || true
    [[ ${r_version:-} == "$version" ]] && break
    ((SECONDS < deadline)) || fail "no audit record of Version $version under ItemKey $item_key after ${AUDIT_WAIT_SECONDS}s"
    sleep 0.2
done
echo "audit record: ItemKey $r_key, EventId $r_event: $r_operation by $r_principal in $r_region at $r_time, Version $r_version, Outcome $r_outcome"
echo "smoke.sh: OK"
