"""Schemathesis hooks for Keyport's contract test (scripts/contract/run.sh).

The fuzzer reads ids from responses (the key list, the audit log) and will happily revoke or
disable the very key it authenticates with. So it never keeps one for long: run.sh mints a
supply of admin keys with Keyport's own command line before the server starts (so the server
knows them all from the first request), and each second of the run uses the next one. A
self-revocation costs at most a second of 401s, which every operation documents.

With the admin API it could also put its own account on a plan of one request a day, or change
its plan to that, and spend the rest of the run on 429s. Calls naming the contract admin or its
plan in the path are pointed at an id no one has instead (a 404, which they document), and so
are the key ids of a bulk revocation.
"""

import os
import time

import schemathesis

with open(os.environ["KEYPORT_CONTRACT_KEYS"]) as supply:
    KEYS = [line.strip() for line in supply if line.strip()]

PROTECTED = {p for p in os.environ.get("KEYPORT_CONTRACT_PROTECTED", "").split(",") if p}


@schemathesis.hook
def before_call(context, case, kwargs):
    params = case.path_parameters or {}
    for name, value in list(params.items()):
        if value in PROTECTED:
            params[name] = value[:4] + "0" * 20
    # Bulk revocation takes up to 100 ids read from the key list: the supply's future keys.
    # The ids become ones no key has (same count and shape); single revocation, which costs at
    # most a second of the supply, is still exercised with real ids.
    body = case.body
    if case.path == "/v1/hygiene/revoke" and isinstance(body, dict):
        ids = body.get("key_ids")
        if isinstance(ids, list):
            body["key_ids"] = [
                "key_" + "0" * 20 if isinstance(i, str) and i.startswith("key_") else i
                for i in ids
            ]


@schemathesis.auth()
class NextKey:
    """Each second of the run uses the next key of the supply, whatever the cached auth says."""

    def __init__(self):
        self.start = time.monotonic()

    def current(self):
        second = int(time.monotonic() - self.start)
        return KEYS[min(second, len(KEYS) - 1)]

    def get(self, case, context):
        return self.current()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {self.current()}"
