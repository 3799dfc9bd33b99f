"""Schemathesis hooks for Keyport's contract test (scripts/contract/run.sh).

The fuzzer reads ids from responses (the key list, the audit log) and will happily revoke or
disable the very key it authenticates with. So it never keeps one for long: run.sh mints a
supply of admin keys with Keyport's own command line before the server starts (so the server
knows them all from the first request), and every refresh takes the next one. A
self-revocation costs at most one refresh interval of 401s, which every operation documents.
"""

import os

import schemathesis

with open(os.environ["KEYPORT_CONTRACT_KEYS"]) as supply:
    KEYS = [line.strip() for line in supply if line.strip()]


@schemathesis.auth(refresh_interval=1)
class NextKey:
    def __init__(self):
        self.used = 0

    def get(self, case, context):
        key = KEYS[self.used % len(KEYS)]
        self.used += 1
        return key

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
