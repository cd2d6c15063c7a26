#!/usr/bin/env bash
# Fuzz IC-Light's endpoints (/iclight/v1/*) of a running webui from their OpenAPI schema with schemathesis.
#
#   tools/fuzz_endpoints.sh URL USER:PASSWORD [EXAMPLES]     e.g. http://127.0.0.1:7860 u:p 200
#
# The webui runs with --api --api-auth USER:PASSWORD. schemathesis 4 (`pip install schemathesis`, in a venv
# of its own, or SCHEMATHESIS=/path/to/schemathesis) generates EXAMPLES requests per operation (default 200),
# valid and invalid, from the schema the webui serves at /openapi.json, and checks every answer:
#   not_a_server_error     no 5xx, whatever is sent
#   ignored_auth           each operation also sent without and with wrong credentials: 401, never a 2xx
#   status_code_conformance, content_type_conformance, response_schema_conformance
#                          every answer is one the schema documents, in JSON, in its documented shape
# Reports (JUnit, NDJSON) go into a temporary folder, printed at the end.
set -euo pipefail
url=${1:?usage: fuzz_endpoints.sh URL USER:PASSWORD [EXAMPLES]}
auth=${2:?usage: fuzz_endpoints.sh URL USER:PASSWORD [EXAMPLES]}
examples=${3:-200}
schemathesis=${SCHEMATHESIS:-schemathesis}
reports=$(mktemp -d -t iclight-fuzz-XXXXXX)

"$schemathesis" run "$url/openapi.json" \
  --include-path-regex '^/iclight/v1/' \
  --auth "$auth" \
  --checks not_a_server_error,ignored_auth,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "$examples" --seed 20261206 --workers 1 --request-timeout 300 \
  --generation-database none --report junit,ndjson --report-dir "$reports" \
  && status=0 || status=$?
echo "reports: $reports"
exit "$status"
