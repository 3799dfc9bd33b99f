import { expect, test } from "./fixtures";
import { steadyNow, totp } from "./totp";

const PASSWORD = "glacier lantern pepper";

test("create a key, copy it from the one-time display, rotate it, revoke it, read the audit log", async ({ page, context }, testInfo) => {
  const problems: string[] = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(e.message));
  const shot = (name: string) => page.screenshot({ path: testInfo.outputPath(name), fullPage: true });
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  const started = Date.now();

  // A new developer: sign up and enrol.
  const email = `keys-${Date.now()}@example.com`;
  await page.goto("/signup");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  const setupKey = (await page.getByTestId("setup-key").innerText()).trim();
  await page.getByLabel("Authentication code").fill(totp(setupKey, (await steadyNow()) - 30));
  await page.getByRole("button", { name: "Verify" }).click();
  await page.getByLabel("I have saved these codes").check();
  await page.getByRole("button", { name: "Continue" }).click();

  // Keys: an empty state that says what to do.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Keys" }).first().click();
  await expect(page.getByText("No API keys yet")).toBeVisible();
  await shot("keys-01-empty.png");
  await page.getByRole("link", { name: "Create your first key" }).click();
  await page.getByRole("link", { name: /Keyport management API/ }).click();
  await expect(page.getByRole("heading", { name: "Create a key for Keyport management API" })).toBeVisible();
  // Developers are never offered the admin scope.
  await expect(page.locator('input[name="scopes"][value="admin"]')).toHaveCount(0);
  await page.getByLabel("Name").fill("deploy bot");
  await page.locator('input[name="scopes"][value="keys:read"]').check();
  await page.getByLabel("30 days").check();
  await shot("keys-02-form.png");
  await page.getByRole("button", { name: "Create key" }).click();

  // Shown once, with a copy button.
  await expect(page.getByRole("heading", { name: "Copy your new key now" })).toBeVisible();
  const key = await page.getByTestId("new-key").inputValue();
  expect(key).toMatch(/^kp_[0-9A-Za-z]{46}$/);
  await expect(page.locator("[data-hydrated]").first()).toBeAttached();
  await page.getByRole("button", { name: "Copy key" }).click();
  await expect(page.getByRole("button", { name: "Copied" })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
  await shot("keys-03-created.png");
  // From sign-up to a working scoped key in well under a minute.
  expect(Date.now() - started).toBeLessThan(60_000);

  // The key works against the REST API, and the page no longer shows it.
  const me = await page.request.get("/v1/me", { headers: { Authorization: `Bearer ${key}` } });
  expect(me.status()).toBe(200);
  expect((await me.json()).email).toBe(email);
  await page.reload();
  await expect(page.getByTestId("new-key")).toHaveCount(0);

  // Listed, with its start and status.
  await page.getByRole("link", { name: "API keys" }).click();
  const row = page.getByRole("row", { name: /deploy bot/ });
  await expect(row).toContainText(key.slice(0, 9));
  await expect(row).toContainText("Active");
  await shot("keys-04-list.png");

  // Rotate with a 1 hour grace period: a new key, shown once; the old one keeps working.
  await row.getByRole("link", { name: "deploy bot" }).click();
  await page.getByText("Rotate key…").click();
  await page.getByLabel("Grace period").selectOption("3600");
  await page.getByRole("button", { name: "Rotate key" }).click();
  const rotated = await page.getByTestId("new-key").inputValue();
  expect(rotated).not.toBe(key);
  const old = await page.request.get("/v1/me", { headers: { Authorization: `Bearer ${key}` } });
  expect(old.status()).toBe(200);
  await shot("keys-05-rotated.png");

  // Revoke the new key (confirmation first); it stops working at once.
  await page.getByText("Revoke key…").click();
  await expect(page.getByText(/Every request using it fails from now on/)).toBeVisible();
  await page.getByLabel("Reason (optional)").fill("end-to-end test");
  await page.getByRole("button", { name: "Revoke key" }).click();
  await expect(page.getByText("Key revoked. It no longer verifies.")).toBeVisible();
  const revoked = await page.request.get("/v1/me", { headers: { Authorization: `Bearer ${rotated}` } });
  expect(revoked.status()).toBe(401);
  await shot("keys-06-revoked.png");

  // The audit log tells the story.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit log" }).first().click();
  for (const action of ["key.create", "key.rotate", "key.revoke"]) {
    await expect(page.getByRole("cell", { name: action, exact: true }).first()).toBeVisible();
  }
  await shot("keys-07-audit.png");

  // On a phone the list is stacked cards: name, start, status and dates, with no sideways
  // scrolling; the rotating key says until when, in local time.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto("/keys");
  const cards = page.getByRole("list", { name: "Your API keys" });
  await expect(cards).toBeVisible();
  await expect(page.getByRole("table")).toBeHidden();
  const rotating = cards.getByRole("listitem").filter({ hasText: "Rotating" });
  await expect(rotating).toContainText("deploy bot");
  await expect(rotating).toContainText(key.slice(0, 9));
  await expect(rotating).toContainText("until");
  await expect(rotating.locator("time").first()).toBeVisible();
  await expect(cards.getByRole("listitem").filter({ hasText: "Revoked" })).toContainText(rotated.slice(0, 9));
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await shot("keys-08-list-phone.png");
  expect(problems).toEqual([]);
});
