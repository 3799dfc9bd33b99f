"""Schemathesis hooks for Keyport's contract test (scripts/contract/run.sh).

The fuzzer reads ids from responses (the key list, the audit log) and will happily revoke or
disable the very key it authenticates with. So it never keeps one for long: run.sh mints a
supply of admin keys with Keyport's own command line before the server starts (so the server
knows them all from the first request), and each second of the run uses the next one. A
self-revocation costs at most a second of 401s, which every operation documents.
"""

import os
import time

import schemathesis

with open(os.environ["KEYPORT_CONTRACT_KEYS"]) as supply:
    KEYS = [line.strip() for line in supply if line.strip()]


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
