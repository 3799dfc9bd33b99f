import * as http from "node:http";
import { AddressInfo } from "node:net";
import { expect, test } from "./fixtures";
import { steadyNow, totp } from "./totp";

const PASSWORD = "glacier lantern pepper";

/// A receiver on a free port that answers 204 and keeps what it got.
async function receiver(): Promise<{ url: string; got: { headers: http.IncomingHttpHeaders; body: string }[]; close: () => void }> {
  const got: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      got.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/keyport-events`, got, close: () => server.close() };
}

test("register a webhook, copy its secret, send a test event and see it in the delivery log", async ({ page }, testInfo) => {
  const problems: string[] = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(e.message));
  const shot = (name: string) => page.screenshot({ path: testInfo.outputPath(name), fullPage: true });
  const hook = await receiver();

  const email = `hooks-${Date.now()}@example.com`;
  await page.goto("/signup");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  const setupKey = (await page.getByTestId("setup-key").innerText()).trim();
  await page.getByLabel("Authentication code").fill(totp(setupKey, (await steadyNow()) - 30));
  await page.getByRole("button", { name: "Verify" }).click();
  await page.getByLabel("I have saved these codes").check();
  await page.getByRole("button", { name: "Continue" }).click();

  // The page from the main navigation, empty at first.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Webhooks" }).first().click();
  await expect(page.getByRole("heading", { name: "Webhooks", level: 1 })).toBeVisible();
  await expect(page.getByText("No endpoints yet")).toBeVisible();
  // A URL that is not http(s) is refused with a message at the field, and the form keeps what was typed.
  await page.getByLabel("Endpoint URL").fill("ftp://example.com/hook");
  await page.getByRole("button", { name: "Add endpoint" }).click();
  await expect(page.getByText("enter a URL starting with https://")).toBeVisible();
  await expect(page.getByLabel("Description (optional)")).toHaveValue("");
  await shot("webhooks-01-empty-and-error.png");

  await page.getByLabel("Endpoint URL").fill(hook.url);
  await page.getByLabel("Description (optional)").fill("Billing service");
  await page.getByLabel("key.created").check();
  await page.getByLabel("key.revoked").check();
  await page.getByRole("button", { name: "Add endpoint" }).click();

  // The endpoint's page: the secret, once, with a copy button.
  await expect(page.getByRole("heading", { name: "Webhook endpoint" })).toBeVisible();
  const secret = await page.getByTestId("webhook-secret").inputValue();
  expect(secret).toMatch(/^whsec_[A-Za-z0-9+/=]{40,}$/);
  await expect(page.getByRole("button", { name: "Copy secret" })).toBeVisible();
  await expect(page.getByText("Nothing delivered yet")).toBeVisible();
  await shot("webhooks-02-created.png");
  await page.reload();
  await expect(page.getByTestId("webhook-secret")).toHaveCount(0);

  // Send a test event; it arrives signed, and the log shows it delivered.
  await page.getByRole("button", { name: "Send test event" }).click();
  await expect(page.getByRole("status")).toContainText("Test event queued");
  await expect.poll(() => hook.got.length, { timeout: 10_000 }).toBe(1);
  const delivery = hook.got[0];
  expect(delivery.headers["webhook-id"]).toMatch(/^msg_/);
  expect(delivery.headers["webhook-signature"]).toMatch(/^v1,/);
  expect(JSON.parse(delivery.body).type).toBe("webhook.test");
  await expect.poll(async () => {
    await page.reload();
    return page.getByTestId("delivery").first().innerText();
  }, { timeout: 10_000 }).toContain("Delivered");
  const row = page.getByTestId("delivery").first();
  await expect(row).toContainText("webhook.test");
  await expect(row).toContainText(delivery.headers["webhook-id"] as string);
  await expect(row).toContainText("HTTP 204");
  await shot("webhooks-03-delivered.png");

  // Redeliver: the same webhook-id again.
  await row.getByRole("button", { name: /Redeliver/ }).click();
  await expect.poll(() => hook.got.length, { timeout: 10_000 }).toBe(2);
  expect(hook.got[1].headers["webhook-id"]).toBe(delivery.headers["webhook-id"]);

  // Deleting asks first.
  await page.getByRole("link", { name: "Webhooks" }).first().click();
  const card = page.getByTestId("webhook");
  await expect(card).toContainText("Billing service");
  await expect(card).toContainText("key.created, key.revoked");
  await card.getByText("Delete", { exact: true }).click();
  await expect(card.getByText("Delete this endpoint?")).toBeVisible();
  await shot("webhooks-04-confirm-delete.png");
  await card.getByRole("button", { name: "Delete endpoint" }).click();
  await expect(page.getByRole("status")).toContainText("Endpoint deleted");
  await expect(page.getByText("No endpoints yet")).toBeVisible();

  // On a phone the page still fits.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await shot("webhooks-05-phone.png");
  hook.close();
  expect(problems).toEqual([]);
});
