import { expect, test } from "./fixtures";
import { signInNewAdmin } from "./admin-session";

test("a burst of verifications shows on the key's chart and the platform dashboard", async ({ page }, testInfo) => {
  const shot = (name: string) => page.screenshot({ path: testInfo.outputPath(name), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });
  await signInNewAdmin(page, `usage-${Date.now()}@example.com`);

  // Before any traffic the key's chart says so.
  await page.goto("/keys/new?api=keyport");
  const name = `chart key ${Date.now()}`;
  await page.getByLabel("Name").fill(name);
  await page.locator('input[name="scopes"][value="keys:read"]').check();
  await page.getByLabel("30 days").check();
  await page.getByRole("button", { name: "Create key" }).click();
  const key = await page.getByTestId("new-key").inputValue();
  const keyUrl = page.url();
  await expect(page.getByText("No verifications in this range")).toBeVisible();

  // 40 verifications and 10 asking for a scope the key lacks, through the real endpoint, as fast
  // as they go: the plan's burst of 20 lets some through and rate limits the rest.
  const seen: Record<string, number> = {};
  for (let i = 0; i < 50; i++) {
    const r = await page.request.post("/v1/keys/verify", { data: { key, scopes: i < 40 ? ["keys:read"] : ["audit:read"] } });
    expect(r.status()).toBe(200);
    const code: string = (await r.json()).code;
    seen[code] = (seen[code] ?? 0) + 1;
  }
  expect(seen.INSUFFICIENT_SCOPE).toBe(10);
  expect(seen.VALID).toBeGreaterThanOrEqual(20);
  expect((seen.VALID ?? 0) + (seen.RATE_LIMITED ?? 0)).toBe(40);

  // The counters reach the database within the flush interval (5 s).
  await expect
    .poll(async () => {
      await page.goto(keyUrl);
      return page.getByTestId("usage-chart").getAttribute("data-total");
    }, { timeout: 20_000, intervals: [1_000] })
    .toBe("50");
  const chart = page.getByTestId("usage-chart");
  await expect(chart.locator("svg[role=img]")).toBeVisible();
  // Current limits: the plan's burst of 20 and its daily quota, which counted the valid ones.
  await expect(page.getByTestId("rate-use")).toContainText(/of 20 available now/);
  await expect(page.getByTestId("quota-use")).toHaveText(`${seen.VALID} of 10,000 today`);
  await expect(chart.locator('rect[fill="#10b981"]').first()).toBeVisible();
  await expect(chart.getByRole("listitem").filter({ hasText: "Valid" })).toContainText(String(seen.VALID));
  await expect(chart.getByRole("listitem").filter({ hasText: "Missing scope" })).toContainText("10");
  if (seen.RATE_LIMITED) {
    await expect(chart.getByRole("listitem").filter({ hasText: "Rate limited" })).toContainText(String(seen.RATE_LIMITED));
  }
  // After hydration, hovering a bar shows its counts.
  await expect(page.locator("[data-hydrated]").first()).toBeAttached();
  await chart.locator("g[data-tip]", { has: page.locator('rect[fill="#10b981"]') }).last().hover();
  await expect(page.getByRole("tooltip")).toContainText(/Valid: \d+/);
  await expect(page.getByRole("tooltip")).toContainText(/\d{4}-\d\d-\d\d \d\d:\d\d UTC — \d+ verifications/);
  await shot("usage-01-key-desktop.png");

  // The last hour, by minute.
  await page.getByRole("navigation", { name: "Time range" }).getByRole("link", { name: "1 hour" }).click();
  await expect(page.getByTestId("usage-chart")).toHaveAttribute("data-total", "50");
  await expect(page.getByText("(per minute, UTC)")).toBeVisible();
  const csv = await page.request.get(await page.getByRole("link", { name: "Download CSV" }).getAttribute("href") ?? "");
  expect(csv.headers()["content-type"]).toContain("text/csv");
  const lines = (await csv.text()).trim().split("\n");
  expect(lines[0]).toBe("start,MALFORMED,NOT_FOUND,REVOKED,DISABLED,EXPIRED,IP_NOT_ALLOWED,INSUFFICIENT_SCOPE,VERSION_RETIRED,RATE_LIMITED,QUOTA_EXCEEDED,VALID,total");
  expect(lines.slice(1).reduce((sum, line) => sum + Number(line.split(",").at(-1)), 0)).toBe(50);

  // The platform dashboard lists the key among the top keys.
  await page.goto("/admin");
  await expect(page.getByRole("heading", { name: "Platform dashboard" })).toBeVisible();
  await expect(page.getByTestId("top-keys").getByRole("link", { name })).toBeVisible();
  await expect(page.getByTestId("usage-chart")).not.toHaveAttribute("data-total", "0");
  await shot("usage-02-admin-desktop.png");
  await page.getByTestId("top-keys").getByRole("link", { name }).click();
  await expect(page.getByRole("heading", { name, level: 1 })).toBeVisible();

  // Phone-sized.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(keyUrl);
  await expect(page.getByTestId("usage-chart").locator("svg[role=img]")).toBeVisible();
  await shot("usage-03-key-phone.png");
  await page.goto("/dashboard");
  await expect(page.getByTestId("usage-chart")).toBeVisible();
  await shot("usage-04-dashboard-phone.png");
});
