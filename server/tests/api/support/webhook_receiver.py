"""A webhook receiver for the tests: checks every delivery's signature with the `standardwebhooks`
package (PyPI; an implementation independent of Keyport's), answers 500 to the first N deliveries
and 204 after, and prints one JSON line per delivery on stdout.

Usage: webhook_receiver.py SECRETS_FILE FAIL_FIRST
SECRETS_FILE holds one `whsec_...` per line (read at every delivery, so a test can rotate);
the line printed says which of them verified the delivery.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRETS_FILE = sys.argv[1]
FAIL_FIRST = int(sys.argv[2])
received = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global received
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with open(SECRETS_FILE) as f:
            secrets = [line.strip() for line in f if line.strip()]
        verified = []
        for secret in secrets:
            try:
                Webhook(secret).verify(body, dict(self.headers.items()))
                verified.append(True)
            except WebhookVerificationError:
                verified.append(False)
        received += 1
        status = 500 if received <= FAIL_FIRST else 204
        print(json.dumps({
            "n": received,
            "path": self.path,
            "id": self.headers.get("webhook-id"),
            "timestamp": self.headers.get("webhook-timestamp"),
            "signature": self.headers.get("webhook-signature"),
            "content_type": self.headers.get("content-type"),
            "verified": verified,
            "body": body.decode("utf-8", "replace"),
            "answered": status,
        }), flush=True)
        self.send_response(status)
        self.end_headers()
        if status == 500:
            self.wfile.write(b"not yet")

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
