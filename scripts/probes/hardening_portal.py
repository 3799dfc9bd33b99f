#!/usr/bin/env python3
"""Probes of the hardening rules (issue 12) that need signed-in browsers, against any keyport
binary, old or new: starts it on a free port with a throwaway data directory, signs people up
and enrols them in TOTP like a browser without JavaScript would (the authenticator is computed
here), and prints one line per probe. Usage: scripts/probes/hardening_portal.py BIN

Not part of ./dev.sh test (the Rust tests assert each rule); it prints before/after figures for
the issue's note. Standard library only."""
import base64, hashlib, hmac, json, os, re, socket, sqlite3, struct, subprocess, sys, tempfile
import time, urllib.error, urllib.parse, urllib.request, http.cookiejar

PASSWORD = "glacier lantern pepper"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    return port


def totp(secret, step):
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), "sha1").digest()
    o = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1_000_000)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


class Browser:
    """A cookie-keeping client that does not follow redirects; each instance is one browser."""

    def __init__(self, base, ip):
        self.base, self.ip = base, ip
        self.opener = urllib.request.build_opener(
            NoRedirect, urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.secret, self.last_step = None, 0

    def request(self, path, fields=None, headers=None, method=None, body=None):
        data = body if body is not None else (
            urllib.parse.urlencode(fields).encode() if fields is not None else None)
        h = {"Origin": self.base, "X-Forwarded-For": self.ip, **(headers or {})}
        req = urllib.request.Request(self.base + path, data=data, headers=h, method=method)
        try:
            r = self.opener.open(req, timeout=30)
        except urllib.error.HTTPError as e:
            r = e
        return r.status, r.headers.get("location", ""), r.read().decode(errors="replace")

    def get(self, path):
        return self.request(path)

    def post(self, path, **fields):
        return self.request(path, fields)

    def code(self):
        """The next TOTP code this user's authenticator may give: each step is accepted once,
        steps only move forward, and the server allows one step of drift either way."""
        step = max(int(time.time() // 30) - 1, self.last_step + 1)
        while step > int(time.time() // 30) + 1:
            time.sleep(1)
        self.last_step = step
        return totp(self.secret, step)

    def enrol(self):
        _, _, page = self.get("/enroll")
        m = re.search(r'data-testid="setup-key"[^>]*>([A-Z2-7 ]+)<', page)
        self.secret = m.group(1).replace(" ", "")
        self.post("/enroll", code=self.code())
        _, _, page = self.get("/enroll/recovery")
        codes = re.findall(r"<li>([a-z0-9-]+)</li>", page)
        return codes

    def sign_up(self, email):
        self.email = email
        self.post("/signup", email=email, password=PASSWORD)
        return self.enrol()

    def sign_in(self, password=PASSWORD):
        """Password then code; returns where the code step sent the browser."""
        status, location, _ = self.post("/login", email=self.email, password=password)
        if location != "/login/code":
            return location
        return self.post("/login/code", code=self.code())[1]

    def flash(self, path):
        _, _, page = self.get(path)
        m = re.search(r"(Too many attempts[^<]*|Incorrect email or password|Your current password is not correct\.)", page)
        return m.group(1) if m else "(no message)"


def main():
    binary = sys.argv[1]
    data = tempfile.mkdtemp()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # A 2FA code stays fresh for 1 minute (default 15), so the step-up probe needs no long wait.
    env = {**os.environ, "KEYPORT_ADMIN_PASSWORD": PASSWORD, "KEYPORT_TRUSTED_PROXIES": "127.0.0.1/32",
           "KEYPORT_STEP_UP_MINUTES": "1"}
    subprocess.run([binary, "admin", "create", "--email", "root@example.com", "--data-dir", data],
                   env=env, capture_output=True, check=True)
    server = subprocess.Popen([binary, "serve", "--addr", f"127.0.0.1:{port}", "--data-dir", data],
                              env=env, stdout=open(f"{data}/log", "w"), stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/readyz", timeout=1); break
            except Exception:
                time.sleep(0.1)
        probe(binary, base, data, env)
    finally:
        server.kill()


def mint(binary, data, env, owner, scopes):
    out = subprocess.run([binary, "keys", "create", "--owner", owner, "--api", "keyport", "--scopes",
                          scopes, "--name", "probe", "--expires-in-days", "1", "--data-dir", data],
                         env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().split()[-1]


def api(base, token, method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        r = urllib.request.urlopen(req, timeout=30)
    except urllib.error.HTTPError as e:
        r = e
    text = r.read().decode()
    try:
        return r.status, json.loads(text) if text else None
    except ValueError:
        return r.status, text


def probe(binary, base, data, env):
    admin = Browser(base, "192.0.2.1"); admin.email = "root@example.com"
    admin.post("/login", email=admin.email, password=PASSWORD)
    admin.enrol()
    admin_fresh_since = time.time()
    dev = Browser(base, "192.0.2.2")
    codes = dev.sign_up("dev@example.com")

    # Item 6: recovery codes' strength, and what is stored.
    compact = codes[0].replace("-", "")
    stored = [r[0] for r in sqlite3.connect(f"{data}/keyport.db").execute("select code_hash from recovery_codes")]
    sha = hashlib.sha256(compact.encode()).hexdigest()
    print(f"P10 (6) a recovery code: {len(compact)} characters = {len(compact) * 5} bits; "
          f"the database holds its unsalted SHA-256: {sha in stored}")

    # Item 4: wrong current passwords on the settings form count against the account.
    for _ in range(6):
        dev.post("/settings/password", current_password="not my password", new_password="new harbour lights")
    fresh = Browser(base, "192.0.2.3"); fresh.email = dev.email
    _, location, _ = fresh.post("/login", email=dev.email, password=PASSWORD)
    answer = "asks for the code" if location == "/login/code" else fresh.flash("/login")
    print(f"P11 (4) after 6 wrong current passwords on /settings, sign-in with the right one: {answer}")

    # Item 5: a half-signed-in session of an attacker who has the password, while the victim
    # resets 2FA: does reloading /enroll show the victim's new setup key?
    victim = Browser(base, "192.0.2.4")
    victim.sign_up("victim@example.com")
    attacker = Browser(base, "198.51.100.9"); attacker.email = victim.email
    attacker.post("/login", email=victim.email, password=PASSWORD)
    victim.post("/settings/2fa/reset", code=victim.code())
    _, _, page = victim.get("/enroll")
    new_key = re.search(r'data-testid="setup-key"[^>]*>([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    _, location, page = attacker.get("/enroll")
    seen = new_key in page.replace(" ", "")
    print(f"P12 (5) victim resets 2FA; the attacker's half-signed-in session reloads /enroll: "
          f"sees the victim's new setup key: {seen} (HTTP answer: {location or 'page'})")
    victim.secret = new_key; victim.last_step = 0
    victim.post("/enroll", code=victim.code())

    # Tokens for the REST API.
    root_token = mint(binary, data, env, "root@example.com", "admin")
    dev_token = mint(binary, data, env, "dev@example.com", "keys:read,keys:write")
    time.sleep(6)  # keys minted by the CLI reach the serving process by its periodic refresh
    dev_id = api(base, dev_token, "GET", "/v1/me")[1]["id"]

    # Item 8: promote without a fresh code, once the admin's last code is older than the step-up
    # window (1 minute here).
    time.sleep(max(0.0, 62 - (time.time() - admin_fresh_since)))
    admin.post("/admin/users/action", user_id=dev_id, action="promote")
    role = api(base, dev_token, "GET", "/v1/me")[1]["role"]
    print(f"P13 (8) an admin's session promotes a developer without a fresh 2FA code: role is now {role}")
    if role == "admin":
        admin.post("/admin/users/action", user_id=dev_id, action="demote", code=admin.code())

    # Plans, created and assigned by the admin (with a fresh code where the new code asks).
    def plan(name, quota, period, scope="key"):
        admin.post("/admin/plans", name=name, quota_limit=str(quota), quota_period=period, limit_scope=scope,
                   max_active_keys="10", max_lifetime_days="", rate_limit="", burst="")
        _, _, page = admin.get("/admin/plans")
        # The plan's card: its heading, then (default form or edit form) its hidden plan_id.
        card = re.search(r'font-medium">' + re.escape(name) + r'.*?name="plan_id" value="([^"]+)"', page, re.S)
        return card.group(1)

    def assign(plan_id):
        admin.post("/admin/users/plan", user_id=dev_id, plan_id=plan_id, code=admin.code())

    api(base, root_token, "POST", "/v1/apis", {"slug": "weather", "name": "Weather", "description": "",
                                                 "scopes": [{"name": "read", "description": "Read"}], "versions": []})
    monthly = plan("Monthly 10k", 10000, "month")
    assign(monthly)
    status, body = api(base, dev_token, "POST", "/v1/keys", {"name": "daily", "api": "weather", "scopes": ["read"],
                                                             "quota": {"limit": 10000, "period": "day"}})
    print(f"P14 (9) on a 10,000/month plan, a key with 10,000/day: HTTP {status}")

    # Verification without a caller token (the gateway's call): the developer's own management
    # key is under the same plans, and must not use up the quota being probed.
    def verify(key, n):
        codes = [api(base, "", "POST", "/v1/keys/verify", {"key": key, "api": "weather"})[1].get("code") for _ in range(n)]
        return sum(1 for c in codes if c == "VALID")

    roomy = plan("Roomy", 1000, "day")
    assign(roomy)
    status, key = api(base, dev_token, "POST", "/v1/keys", {"name": "roomy", "api": "weather", "scopes": ["read"],
                                                            "quota": {"limit": 100, "period": "day"}})
    admin.post("/admin/plans", plan_id=roomy, name="Roomy", quota_limit="3", quota_period="day", limit_scope="key",
               max_active_keys="10", max_lifetime_days="", rate_limit="", burst="", code=admin.code())
    time.sleep(1)
    print(f"P15 (10) a 100/day key after its plan is lowered to 3/day: {verify(key['key'], 6)} of 6 verifications valid")

    # The keys are made first: under the new plan, the management key's calls would count too.
    keys = [api(base, dev_token, "POST", "/v1/keys", {"name": f"team {i}", "api": "weather", "scopes": ["read"]})[1]
            for i in range(2)]
    team = plan("Team", 4, "day", scope="developer")
    assign(team)
    time.sleep(1)
    valid = sum(verify(k["key"], 4) for k in keys)
    print(f"P16 (11) a plan of 4/day per developer, two keys, 4 verifications each: {valid} of 8 valid")
    assign(plan("Roomy again", 1000, "day"))

    # Item 13: authorization failures are audited (REST 404 on another user's key, a developer's
    # admin form post).
    status, theirs = api(base, root_token, "POST", "/v1/keys", {"name": "root's", "api": "weather", "scopes": ["read"]})
    status, _ = api(base, dev_token, "GET", f"/v1/keys/{theirs['id']}")
    dev.post("/admin/users/action", user_id=dev_id, action="promote")
    events = api(base, root_token, "GET", "/v1/audit?limit=200")[1]["events"]
    denied = [e for e in events if e.get("action") == "authz.denied"]
    print(f"P17 (13) a developer reads an admin's key (HTTP {status}) and posts an admin form: "
          f"{len(denied)} authz.denied audit events")


if __name__ == "__main__":
    main()
